#!/usr/bin/python3
"""Multi-shard benchmark (issues 15 and 16): bench-server with 1 or 2 shards on both cores of
the machine, loaded by h2load with 16 connections x 10 streams, EmptyCall. Each variant (a
server command line) is measured in interleaved rounds: a saturating run (RPC/s, server CPU
per RPC, p50/p99) and a run at a fixed offered rate below saturation (CPU per RPC, p50/p99).
Prints a Markdown report with the commands; --out writes it to a file (--append adds to it).

The server is not restricted by taskset: it gets every CPU of the machine. The load generator
shares those CPUs: on a 2-core VM the figures measure the server in that company, not alone
(see perf/README.md, "Multiple shards"). Two ways to run the load (--clients):
  shared  one h2load -t 2 on every CPU (the scheduler places its threads)
  split   one h2load -t 1 per CPU, pinned there (taskset -c i), connections split evenly: where
          each connection is opened is fixed, which is what steering by receiving CPU keys on
          (on loopback the kernel processes a client's SYN on the client's own CPU)

Default variants: 1 shard (the reference for the 2-shard/1-shard ratio of issue 16), and with
2 shards (issue 15): no pinning/no steering, pinning only (--pin on), pinning and steering
(--pin on --steer on). Give others with --variant NAME='COMMAND' (repeatable), e.g. a server
built before a change against one after it."""

import argparse
import datetime
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the runner's helpers: bodies, checked call, h2load parsing, server process)

ROOT = bench.ROOT


def task_stats(pid):
    """Per thread: (name, utime+stime ticks, involuntary context switches, last CPU, migrations
    between CPUs; the last from /proc/.../sched, 0 where the kernel has no sched debug)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            name = head.split("(", 1)[1]
            nonvol = 0
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("nonvoluntary_ctxt_switches:"):
                        nonvol = int(line.split()[1])
            migrations = 0
            try:
                with open(f"/proc/{pid}/task/{tid}/sched") as f:
                    for line in f:
                        if line.startswith("se.nr_migrations"):
                            migrations = int(line.split(":")[1])
            except OSError:
                pass
            out[tid] = (name, int(fields[11]) + int(fields[12]), nonvol, int(fields[36]), migrations)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return out


def machine_busy_ticks():
    """Busy ticks of all CPUs together (user..steal minus idle and iowait) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Result:
    def __init__(self):
        self.rps = self.cpu_us = self.p50 = self.p99 = None
        self.split = ""        # share of the server's CPU per thread, busiest first
        self.preempt = None    # involuntary context switches of the server per 1,000 RPCs
        self.migrations = None  # server threads' moves between CPUs per 1,000 RPCs
        self.machine_us = None  # busy time of all CPUs (server, h2load, kernel, others) per RPC
        self.other = None       # CPU of other processes (neither server nor h2load), % of the machine
        self.notes = []
        self.command = ""


class Multishard:
    def __init__(self, a):
        self.a = a
        self.scratch = tempfile.mkdtemp(prefix="uringrpc-multishard-")
        sc = bench.Scenario("multishard", "EmptyCall", "h2load", conns=a.conns, streams=a.streams)
        self.sc = sc
        self.body_path = os.path.join(self.scratch, "empty.body")
        with open(self.body_path, "wb") as f:
            f.write(bench.grpc_frame(sc.request))
        self.results = {}  # (variant, kind) -> [Result]
        self.server_cmds = {}

    def clients(self):
        """(taskset prefix, h2load threads, connections) per h2load process of one run."""
        if self.a.clients == "shared":
            return [([], self.a.threads, self.a.conns)]
        n = os.cpu_count()
        return [(["taskset", "-c", str(i)], 1, self.a.conns // n + (1 if i < self.a.conns % n else 0))
                for i in range(n)]

    def h2load_argv(self, port, seconds, log_path=None, rps=None, client=None):
        prefix, threads, conns = client or self.clients()[0]
        argv = prefix + ["h2load", "-t", str(threads), "-c", str(conns), "-m", str(self.a.streams),
                "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", self.body_path,
                "-D", f"{round(seconds * 1000)}ms"]
        if rps:
            argv += ["--rps", f"{rps:g}"]
        if log_path:
            argv += ["--log-file", log_path]
        return argv + [f"http://127.0.0.1:{port}{bench.SERVICE}EmptyCall"]

    def start(self, name, cmd):
        # On every CPU of the machine: the shards may run anywhere (pinning, when on, is the
        # server's own choice among the CPUs of its affinity mask).
        return bench.ServerProcess(name, cmd, f"0-{os.cpu_count() - 1}", self.scratch)

    def run_load(self, port, seconds, rps=None, logs=True):
        """Runs one h2load per client at once; returns (summed h2load figures, latencies,
        bad rows, commands)."""
        procs, cmds = [], []
        for i, client in enumerate(self.clients()):
            log_path = os.path.join(self.scratch, f"h2load-{i}.log") if logs else None
            # --rps is per connection in h2load: the same per-connection rate in every client.
            argv = self.h2load_argv(port, seconds, log_path, rps, client)
            cmds.append(shlex.join(argv))
            procs.append((subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
                          log_path))
        total = {"seconds": 0.0}
        lat, bad = [], 0
        errors = []
        for proc, log_path in procs:
            out, err = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                errors.append(f"h2load exited {proc.returncode}: {err.strip()[-300:]}")
                continue
            r = bench.parse_h2load(out)
            total["seconds"] = max(total["seconds"], r.get("seconds", 0.0))
            for k in ("succeeded", "failed", "errored", "data_bytes"):
                total[k] = total.get(k, 0) + r.get(k, 0)
            if log_path:
                ok, b = bench.latencies_from_log(log_path)
                os.unlink(log_path)
                lat += ok
                bad += b
        if errors:
            raise RuntimeError("; ".join(errors))
        lat.sort()
        return total, lat, bad, cmds

    def measure(self, srv, seconds, rps=None):
        res = Result()
        t0 = task_stats(srv.pid)
        m0 = machine_busy_ticks()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0 = time.monotonic()
        r, lat, bad, cmds = self.run_load(srv.port, seconds, rps)
        wall = time.monotonic() - w0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        m1 = machine_busy_ticks()
        t1 = task_stats(srv.pid)
        res.command = " & ".join(cmds)
        n = r.get("succeeded", 0)
        if not n:
            raise RuntimeError("h2load: no request succeeded")
        per_thread = {tid: (t1[tid][1] - t0.get(tid, (None, 0))[1], t1[tid][0]) for tid in t1}
        server_ticks = sum(v[0] for v in per_thread.values())
        res.rps = n / r["seconds"]
        res.cpu_us = server_ticks / bench.CLK_TCK * 1e6 / n
        res.p50, res.p99 = bench.percentile(lat, 50), bench.percentile(lat, 99)
        busy = sorted((v for v in per_thread.values() if v[0] > 0), reverse=True)
        res.split = "/".join(f"{100 * t / max(1, server_ticks):.0f}" for t, _ in busy[:3])
        nonvol = sum(t1[tid][2] - t0.get(tid, (None, 0, 0))[2] for tid in t1)
        res.preempt = 1000.0 * nonvol / n
        res.migrations = 1000.0 * sum(t1[tid][4] - t0.get(tid, (None, 0, 0, 0, 0))[4] for tid in t1) / n
        res.machine_us = (m1 - m0) / bench.CLK_TCK * 1e6 / n
        # What neither the server nor the h2load processes (our waited-for children) used.
        load_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        other_s = (m1 - m0) / bench.CLK_TCK - server_ticks / bench.CLK_TCK - load_s
        res.other = max(0.0, 100.0 * other_s / (wall * os.cpu_count()))
        if r.get("failed") or r.get("errored") or bad:
            res.notes.append(f"{r.get('failed', 0)} failed, {r.get('errored', 0)} errored")
        per_reply = r.get("data_bytes", 0) / n
        if abs(per_reply - self.reply_bytes) > 0.02 * self.reply_bytes + 1:
            res.notes.append(f"DATA {per_reply:.0f} B/reply, check call had {self.reply_bytes} B")
        return res

    def run_variant(self, name, cmd, rate):
        srv = self.start(name, cmd)
        try:
            if not srv.wait_ready():
                raise RuntimeError(f"{name}: exits before listening: {srv.tail()}")
            self.server_cmds[name] = shlex.join(srv.argv)
            self.reply_bytes = bench.Bench.check(self, self.sc, srv)
            self.run_load(srv.port, self.a.warmup, logs=False)
            sat = self.measure(srv, self.a.seconds)
            fixed = self.measure(srv, self.a.seconds, rps=rate / self.a.conns) if rate else None
            if srv.proc.poll() is not None:
                sat.notes.append(f"server exited: {srv.tail()}")
            return sat, fixed
        finally:
            srv.stop()

    def run(self, variants):
        rate = self.a.rate
        if not rate:
            # Calibration: the first variant's saturating rate (by default the 1-shard server,
            # the slowest); the fixed rate is a share of it.
            name, cmd = variants[0]
            sat, _ = self.run_variant(name + " (calibration)", cmd, 0)
            rate = self.a.rate_share * sat.rps
            self.rate_note = (f"{rate:.0f} RPC/s = {100 * self.a.rate_share:.0f}% of a {self.a.seconds:g} s "
                              f"saturating calibration run of `{name}` ({sat.rps:.0f} RPC/s)")
        else:
            self.rate_note = f"{rate:.0f} RPC/s given by --rate"
        self.rate = rate
        print(f"fixed rate: {self.rate_note}", flush=True)
        for rnd in range(self.a.rounds):
            # Rotate the order every round, so no variant always runs first after a pause.
            order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
            for name, cmd in order:
                sat, fixed = self.run_variant(name, cmd, rate)
                self.results.setdefault((name, "sat"), []).append(sat)
                self.results.setdefault((name, "fixed"), []).append(fixed)
                print(f"round {rnd + 1} {name:34} saturating {sat.rps:9.0f} RPC/s {sat.cpu_us:6.2f} us/RPC "
                      f"p50 {sat.p50} p99 {sat.p99} us threads {sat.split} other {sat.other:.0f}% | fixed {fixed.rps:8.0f} RPC/s "
                      f"{fixed.cpu_us:6.2f} us/RPC p50 {fixed.p50} p99 {fixed.p99} us {fixed.notes or ''}",
                      flush=True)


def med(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    m = statistics.median(values)
    return f"{fmt(m)} ({fmt(min(values))}–{fmt(max(values))})"


def report(ms, variants, argv, started, load_start, load_end):
    a = ms.a
    f_rps = lambda v: f"{v / 1000:.1f}k"  # noqa: E731
    f_us = lambda v: f"{v:.2f}"  # noqa: E731
    f_lat = lambda v: f"{v / 1000:.2f}"  # noqa: E731 (ms)
    f_pre = lambda v: f"{v:.1f}"  # noqa: E731
    clients = ("one `h2load -t 2` on every CPU" if a.clients == "shared" else
               f"one `h2load -t 1` per CPU, pinned (`taskset -c i`), {a.conns // os.cpu_count()} connections each")
    # bench.machine_info() reads the load average when called (the end): ours has both.
    machine = re.sub(r"; load average at start \[.*?\]", "", bench.machine_info())
    lines = [f"Machine: {machine}; load average {load_start} at the start, {load_end} at the end", "",
             f"Command: `{shlex.join(argv)}` (started {started:%Y-%m-%d %H:%M})", "",
             f"Load: {clients}; {a.conns} connections x {a.streams} streams in all, EmptyCall. "
             f"{a.rounds} interleaved rounds (the order of the variants rotates each round); per variant "
             f"and round one server, a check call, a {a.warmup:g} s warm-up, a {a.seconds:g} s saturating run "
             f"and a {a.seconds:g} s run at the fixed rate. Median (min–max) over rounds. Server CPU per RPC is "
             f"the server's utime+stime (all threads) over the RPCs h2load completed; machine CPU per RPC is the "
             f"busy time of all CPUs (server, h2load, kernel, anything else) over the same RPCs; other processes: the "
             f"machine's busy time that was neither the server's nor h2load's, in % of all CPUs, over both runs "
             f"(other jobs on the machine; nice'd builds do not take the lock); latencies (ms) "
             f"from h2load's per-request log. Fixed rate: {ms.rate_note}.", "",
             "| variant | saturating RPC/s | server CPU µs/RPC | machine CPU µs/RPC | other processes % | p50 ms | p99 ms | "
             "server CPU split % | preemptions /1k RPC | migrations /1k RPC | "
             "fixed-rate RPC/s | server CPU µs/RPC | p50 ms | p99 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, _ in variants:
        s, f = ms.results[(name, "sat")], ms.results[(name, "fixed")]
        notes = sorted({n for r in s + f for n in r.notes})
        lines.append(
            f"| {name} | {med([r.rps for r in s], f_rps)} | {med([r.cpu_us for r in s], f_us)} | "
            f"{med([r.machine_us for r in s], f_us)} | {med([r.other for r in s + f], f_pre)} | "
            f"{med([r.p50 for r in s], f_lat)} | {med([r.p99 for r in s], f_lat)} | "
            f"{' '.join(r.split for r in s)} | {med([r.preempt for r in s], f_pre)} | "
            f"{med([r.migrations for r in s], f_pre)} | "
            f"{med([r.rps for r in f], f_rps)} | {med([r.cpu_us for r in f], f_us)} | "
            f"{med([r.p50 for r in f], f_lat)} | {med([r.p99 for r in f], f_lat)} |"
            + (f" {'; '.join(notes)}" if notes else ""))
    ref = variants[0][0]
    if len(variants) > 1:
        lines += ["", f"Against `{ref}` (medians; saturating RPC/s, server CPU µs per RPC saturating and at the "
                  "fixed rate, p99 at the fixed rate):", "",
                  "| variant | RPC/s | server CPU/RPC | at the fixed rate | p99 at the fixed rate |",
                  "| --- | --- | --- | --- | --- |"]

        def m(name, kind, attr):
            v = [getattr(r, attr) for r in ms.results[(name, kind)] if getattr(r, attr) is not None]
            return statistics.median(v) if v else None

        for name, _ in variants[1:]:
            cells = []
            for kind, attr in (("sat", "rps"), ("sat", "cpu_us"), ("fixed", "cpu_us"), ("fixed", "p99")):
                x, y = m(name, kind, attr), m(ref, kind, attr)
                cells.append(f"{x / y:.2f}×" if x and y else "—")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Server CPU split: the share of the server's CPU time taken by each of its busiest "
              "threads (the shards) in each round's saturating run. Migrations: moves of the server's "
              "threads between CPUs (`se.nr_migrations` of `/proc/PID/task/TID/sched`).", "",
              "Commands (last round):", ""]
    for name, _ in variants:
        lines.append(f"- `{name}`: server `{ms.server_cmds.get(name, '?')}`")
        lines.append(f"  - saturating: `{ms.results[(name, 'sat')][-1].command}`")
        lines.append(f"  - fixed rate: `{ms.results[(name, 'fixed')][-1].command}`")
    lines.append(f"\nThe request body `{os.path.basename(ms.body_path)}` is an empty gRPC message "
                 "(5 bytes: `00 00 00 00 00`).")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory holding bin/bench-server")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=COMMAND",
                    help="a server command (without --port); default: the three pinning/steering variants")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="h2load threads (-t)")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=0, help="fixed offered RPC/s (default: --rate-share of "
                    "a calibration run of the first variant)")
    ap.add_argument("--rate-share", type=float, default=0.5)
    ap.add_argument("--clients", choices=["shared", "split"], default="shared",
                    help="shared: one h2load -t THREADS on every CPU; split: one h2load -t 1 pinned per CPU")
    ap.add_argument("--title", help="a heading for the report")
    ap.add_argument("--out", help="write the report to this file too")
    ap.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    a = ap.parse_args()
    server = os.path.join(os.path.abspath(os.path.join(ROOT, a.build)), "bin", "bench-server")
    base = [server, "--shards", str(a.shards)]
    if a.variant:
        variants = [(k, shlex.split(v)) for k, v in (x.split("=", 1) for x in a.variant)]
    else:
        one = [server, "--shards", "1", "--pin", "off", "--steer", "off"]
        variants = [("1 shard", one),
                    (f"{a.shards} shards, no pinning, no steering", base + ["--pin", "off", "--steer", "off"]),
                    (f"{a.shards} shards, pinning only", base + ["--pin", "on", "--steer", "off"]),
                    (f"{a.shards} shards, pinning + steering", base + ["--pin", "on", "--steer", "on"])]
    started = datetime.datetime.now()
    load_start = loadavg()
    argv = ["/usr/bin/python3", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]
    ms = Multishard(a)
    ms.run(variants)
    text = report(ms, variants, argv, started, load_start, loadavg())
    if a.title:
        text = f"## {a.title}\n\n" + text
    print("\n" + text)
    if a.out:
        with open(a.out, "a" if a.append else "w") as f:
            f.write(("\n" if a.append else "") + text)
        print(f"written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
