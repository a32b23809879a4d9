#!/usr/bin/python3
"""Multi-shard benchmark (issues 15 and 16): bench-server with 2 shards on both cores of the
machine, loaded by h2load with 2 threads and 16 connections x 10 streams, EmptyCall. Each
variant (a server command line) is measured in interleaved rounds: a saturating run (RPC/s,
server CPU per RPC, p50/p99) and a run at a fixed offered rate below saturation (CPU per RPC,
p50/p99). Prints a Markdown report with the commands; --out writes it to a file.

Neither the server nor h2load is restricted by taskset: both get every CPU of the machine. On a
2-core VM the load generator therefore shares the cores with the two shards, and the figures
measure the server in that company, not alone (see perf/README.md, "Multiple shards").

Default variants (issue 15): no pinning/no steering, pinning only (--pin on), pinning and
steering (--pin on --steer on). Give others with --variant NAME='COMMAND' (repeatable), e.g.
a server built before a change against one after it."""

import argparse
import datetime
import os
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
    """Per thread: (name, utime+stime ticks, involuntary context switches, last CPU)."""
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
            out[tid] = (name, int(fields[11]) + int(fields[12]), nonvol, int(fields[36]))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return out


class Result:
    def __init__(self):
        self.rps = self.cpu_us = self.p50 = self.p99 = None
        self.split = ""        # share of the server's CPU per thread, busiest first
        self.preempt = None    # involuntary context switches of the server per 1,000 RPCs
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

    def h2load_argv(self, port, seconds, log_path=None, rps=None):
        argv = ["h2load", "-t", str(self.a.threads), "-c", str(self.a.conns), "-m", str(self.a.streams),
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

    def measure(self, srv, seconds, rps=None):
        log_path = os.path.join(self.scratch, "h2load.log")
        argv = self.h2load_argv(srv.port, seconds, log_path, rps)
        res = Result()
        res.command = shlex.join(argv)
        t0 = task_stats(srv.pid)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        t1 = task_stats(srv.pid)
        if p.returncode != 0:
            raise RuntimeError(f"h2load exited {p.returncode}: {p.stderr.strip()[-300:]}")
        r = bench.parse_h2load(p.stdout)
        lat, bad = bench.latencies_from_log(log_path)
        os.unlink(log_path)
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
            subprocess.run(self.h2load_argv(srv.port, self.a.warmup), capture_output=True,
                           timeout=self.a.warmup + 30)
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
            # Calibration: the first variant's saturating rate; the fixed rate is a share of it.
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
                print(f"round {rnd + 1} {name:28} saturating {sat.rps:9.0f} RPC/s {sat.cpu_us:6.2f} us/RPC "
                      f"p50 {sat.p50} p99 {sat.p99} us threads {sat.split} | fixed {fixed.rps:8.0f} RPC/s "
                      f"{fixed.cpu_us:6.2f} us/RPC p50 {fixed.p50} p99 {fixed.p99} us {fixed.notes or ''}",
                      flush=True)


def med(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    m = statistics.median(values)
    return f"{fmt(m)} ({fmt(min(values))}–{fmt(max(values))})"


def report(ms, variants, argv, started):
    a = ms.a
    f_rps = lambda v: f"{v / 1000:.1f}k"  # noqa: E731
    f_us = lambda v: f"{v:.2f}"  # noqa: E731
    f_lat = lambda v: f"{v / 1000:.2f}"  # noqa: E731 (ms)
    f_pre = lambda v: f"{v:.1f}"  # noqa: E731
    lines = [f"Machine: {bench.machine_info()}", "",
             f"Command: `{shlex.join(argv)}` (started {started:%Y-%m-%d %H:%M})", "",
             f"{a.rounds} interleaved rounds (the order of the variants rotates each round); per variant "
             f"and round one server, a check call, a {a.warmup:g} s warm-up, a {a.seconds:g} s saturating run "
             f"and a {a.seconds:g} s run at the fixed rate. Median (min–max) over rounds. CPU per RPC is the "
             f"server's utime+stime (all threads) over the RPCs h2load completed; latencies (ms) from "
             f"h2load's per-request log. Fixed rate: {ms.rate_note}.", "",
             "| variant | saturating RPC/s | CPU µs/RPC | p50 ms | p99 ms | server CPU split % | "
             "preemptions /1k RPC | fixed-rate RPC/s | CPU µs/RPC | p50 ms | p99 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, _ in variants:
        s, f = ms.results[(name, "sat")], ms.results[(name, "fixed")]
        notes = sorted({n for r in s + f for n in r.notes})
        lines.append(
            f"| {name} | {med([r.rps for r in s], f_rps)} | {med([r.cpu_us for r in s], f_us)} | "
            f"{med([r.p50 for r in s], f_lat)} | {med([r.p99 for r in s], f_lat)} | "
            f"{' '.join(r.split for r in s)} | {med([r.preempt for r in s], f_pre)} | "
            f"{med([r.rps for r in f], f_rps)} | {med([r.cpu_us for r in f], f_us)} | "
            f"{med([r.p50 for r in f], f_lat)} | {med([r.p99 for r in f], f_lat)} |"
            + (f" {'; '.join(notes)}" if notes else ""))
    lines += ["", "Server CPU split: the share of the server's CPU time taken by each of its busiest "
              "threads (the two shards) in each round's saturating run.", "", "Commands (last round):", ""]
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
    ap.add_argument("--out", help="write the report to this file too")
    a = ap.parse_args()
    server = os.path.join(os.path.abspath(os.path.join(ROOT, a.build)), "bin", "bench-server")
    base = [server, "--shards", str(a.shards)]
    if a.variant:
        variants = [(k, shlex.split(v)) for k, v in (x.split("=", 1) for x in a.variant)]
    else:
        variants = [("no pinning, no steering", base + ["--pin", "off", "--steer", "off"]),
                    ("pinning only", base + ["--pin", "on", "--steer", "off"]),
                    ("pinning + steering", base + ["--pin", "on", "--steer", "on"])]
    started = datetime.datetime.now()
    argv = ["/usr/bin/python3", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]
    ms = Multishard(a)
    ms.run(variants)
    text = report(ms, variants, argv, started)
    print("\n" + text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        print(f"written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
