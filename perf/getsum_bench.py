#!/usr/bin/python3
"""HttpArena's gRPC unary profile (`unary-grpc`) on this machine: benchmark.BenchmarkService/GetSum
(perf/proto/benchmark.proto) served by our getsum-server, gRPC C++ and grpc-go, loaded by h2load
with a pre-encoded request at 256 and 1,024 connections x 100 streams for 5 s, best of 3, the
servers interleaved round by round. Prints each run and writes (or appends to) a Markdown
result. Run by `make getsum-bench`; perf/README.md ("HttpArena's gRPC unary profile") says
how to read it.

HttpArena's command (scripts/lib/tools/h2load.sh there), which this follows:
  h2load http://localhost:8080/benchmark.BenchmarkService/GetSum -d grpc-sum.bin
         -H 'content-type: application/grpc' -H 'te: trailers' -c C -m 100 -t T -D 5
with RPC/s = h2load's 2xx count / its duration. Two variants here, as the machine has 2 cores:
`shared` (server and h2load both on CPUs 0-1, h2load -t 2: the profile's setting, except that
HttpArena gives them separate CPU sets) and `pinned` (server on CPU 0, h2load -t 1 on CPU 1:
a clean per-core figure)."""

import argparse
import datetime
import os
import re
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (grpc_call, ServerProcess, parse_h2load, ... of perf/bench.py)

HERE, ROOT = bench.HERE, bench.ROOT
PATH = "/benchmark.BenchmarkService/GetSum"
# SumRequest{a=1, b=2}: field 1 varint 1, field 2 varint 2, behind the 5-byte gRPC prefix
# (HttpArena's grpc-sum.bin: 00 00000004 08011002).
REQUEST = bench.grpc_frame(bench.varint_field(1, 1) + bench.varint_field(2, 2))

VARIANTS = {
    # name: (server CPUs, h2load CPUs, h2load threads, what it is)
    "shared": ("0-1", "0-1", 2, "server and h2load share both CPUs (0-1), h2load -t 2"),
    "pinned": ("0", "1", 1, "server on CPU 0, h2load -t 1 on CPU 1"),
}


def server_commands(build):
    return {
        "ours": [os.path.join(build, "bin/getsum-server")],
        "grpc-cpp": [os.path.join(build, "perf/getsum-grpc-cpp-server")],
        "grpc-cpp-callback": [os.path.join(build, "perf/getsum-grpc-cpp-server"), "--api", "callback"],
        "grpc-go": [os.path.join(build, "perf/getsum-grpc-go-server")],
    }


def raise_nofile():
    """1,024 connections need more than 1,024 fds on each side: the soft limit goes up to the
    hard one for this process and so for the servers and h2load it starts (nothing system-wide)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def check(port):
    """One real call through the h2 library: HTTP 200, grpc-status 0, exactly one reply whose
    field 1 (result) is 3. Returns the reply's DATA bytes (7: prefix + 08 03)."""
    headers, trailers, msgs, _, data_bytes = bench.grpc_call(port, "", REQUEST, path=PATH)
    if headers.get(":status") != "200":
        raise RuntimeError(f"HTTP status {headers.get(':status')}")
    if trailers.get("grpc-status") != "0":
        raise RuntimeError(f"grpc-status {trailers.get('grpc-status')} {trailers.get('grpc-message', '')}")
    result = dict(bench.parse_fields(msgs[0])).get(1) if len(msgs) == 1 else None
    if result != 3:
        raise RuntimeError(f"reply {msgs!r}: result {result}, want 3")
    return data_bytes


def parse_status_codes(out):
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    return tuple(int(x) for x in m.groups()) if m else None


class Run:
    def __init__(self):
        self.rps = self.cpu_us = self.p50 = self.p99 = None
        self.rss_kib = self.hwm_kib = self.threads = None
        self.server_util = self.load_util = self.load_us = None
        self.notes = []
        self.command = ""


class GetSumBench:
    def __init__(self, a):
        self.a = a
        self.scratch = tempfile.mkdtemp(prefix="uringrpc-getsum-")
        self.body = os.path.join(self.scratch, "grpc-sum.bin")
        with open(self.body, "wb") as f:
            f.write(REQUEST)
        self.results = {}  # (variant, conns, server) -> [Run]
        self.server_argv = {}

    def h2load_argv(self, variant, conns, port, log_path):
        _, load_cpus, threads, _ = VARIANTS[variant]
        argv = ["taskset", "-c", load_cpus, "h2load", f"http://127.0.0.1:{port}{PATH}",
                "-d", self.body, "-H", "content-type: application/grpc", "-H", "te: trailers",
                "-c", str(conns), "-m", str(self.a.streams), "-t", str(threads),
                "-D", f"{self.a.seconds:g}"]
        if self.a.warmup:
            argv += ["--warm-up-time", f"{self.a.warmup:g}"]
        return argv + ["--log-file", log_path]

    def run_one(self, variant, conns, name, argv):
        srv = bench.ServerProcess(name, argv, VARIANTS[variant][0], self.scratch)  # taskset -c CPUS
        run = Run()
        try:
            if not srv.wait_ready():
                raise RuntimeError(f"exits before listening: {srv.tail()}")
            reply_bytes = check(srv.port)
            log_path = os.path.join(self.scratch, "h2load.log")
            cmd = self.h2load_argv(variant, conns, srv.port, log_path)
            run.command = shlex.join(cmd)
            log_size0 = os.path.getsize(srv.log_path)
            s0 = bench.cpu_ticks(srv.pid)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.a.seconds + self.a.warmup + 60)
            wall = time.monotonic() - t0
            server_s = (bench.cpu_ticks(srv.pid) - s0) / bench.CLK_TCK
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            load_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            run.rss_kib = proc_status_kib(srv.pid, "VmRSS")
            run.hwm_kib = proc_status_kib(srv.pid, "VmHWM")
            run.threads = thread_count(srv.pid)
            if p.returncode != 0:
                raise RuntimeError(f"h2load exited {p.returncode}: {p.stderr.strip()[-300:]}")
            r = bench.parse_h2load(p.stdout)
            codes = parse_status_codes(p.stdout)
            lat, bad = bench.latencies_from_log(log_path)
            os.unlink(log_path)
            ok = codes[0] if codes else 0
            if not ok:
                raise RuntimeError(f"no 2xx response: {p.stdout.strip()[-400:]}")
            # HttpArena's figure: 2xx responses over h2load's duration (which, with
            # --warm-up-time, is the measured window only). CPU per RPC: the server's
            # utime+stime over the whole h2load run (connection setup and any warm-up
            # included) over the responses of that whole run, counted in h2load's log.
            run.rps = ok / r["seconds"]
            total = len(lat) + bad
            run.cpu_us = server_s * 1e6 / max(1, len(lat))
            run.load_us = load_s * 1e6 / max(1, len(lat))
            run.server_util, run.load_util = server_s / wall, load_s / wall
            run.p50, run.p99 = bench.percentile(lat, 50), bench.percentile(lat, 99)
            if r.get("succeeded") != ok or codes[1:] != (0, 0, 0):
                run.notes.append(f"h2load: {r.get('succeeded')} succeeded, status codes {codes}")
            if r.get("failed") or r.get("errored") or bad:
                run.notes.append(f"{r.get('failed', 0)} failed, {r.get('errored', 0)} errored, "
                                 f"{bad} of {total} logged requests without a 200")
            # h2load does not read grpc-status: a server answering 200 with an error status
            # (trailers only) sends no DATA, so compare DATA bytes per reply with the check call's.
            per_reply = r.get("data_bytes", 0) / max(1, r.get("succeeded", 1))
            if abs(per_reply - reply_bytes) > 0.02 * reply_bytes:
                run.notes.append(f"DATA {per_reply:.2f} B/reply, the check call had {reply_bytes} B")
            srv.log.flush()
            if os.path.getsize(srv.log_path) > log_size0:
                with open(srv.log_path, errors="replace") as f:
                    f.seek(log_size0)
                    lines = f.read().strip().splitlines()
                run.notes.append(f"server logged {len(lines)} lines during the run, e.g. {lines[0][:160]!r}")
            if srv.proc.poll() is not None:
                run.notes.append(f"server exited during the run: {srv.tail()}")
            else:
                check(srv.port)  # still answering correctly after the load
        except Exception as e:  # the row says what failed; the other runs go on
            run.notes.append(f"FAILED: {e}")
        finally:
            srv.stop()
        return run

    def run(self):
        cmds = server_commands(self.a.build)
        for name in self.a.servers:
            self.server_argv[name] = cmds[name]
        for variant in self.a.variants:
            for conns in self.a.conns:
                for rnd in range(1, self.a.rounds + 1):
                    for name in self.a.servers:
                        run = self.run_one(variant, conns, name, cmds[name])
                        self.results.setdefault((variant, conns, name), []).append(run)
                        print(f"{variant} c={conns} round {rnd} {name}: {fmt(run.rps, 0)} RPC/s, "
                              f"{fmt(run.cpu_us, 2)} us/RPC server, {fmt(run.load_us, 2)} us/RPC h2load, "
                              f"p99 {ms(run.p99)} ms, RSS {mib(run.rss_kib)} MiB (peak {mib(run.hwm_kib)}), "
                              f"{run.threads} threads {'; '.join(run.notes)}", flush=True)


def fmt(v, digits):
    return "–" if v is None else f"{v:,.{digits}f}"


def ms(us):
    return "–" if us is None else f"{us / 1e3:.1f}"


def mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f}"


def report(b, argv, started, machine):
    a = b.a
    lines = [f"## Run of {started:%Y-%m-%d %H:%M} UTC on {socket.gethostname()}", "",
             f"- Machine: {machine}",
             f"- Command: `{shlex.join(argv)}`",
             f"- Load: h2load, {a.streams} streams per connection, {a.seconds:g} s"
             + (f" after a {a.warmup:g} s warm-up (`--warm-up-time`)" if a.warmup else " (no warm-up, as HttpArena)")
             + f", best of {a.rounds} by RPC/s; servers interleaved within each round, a fresh server process per run.",
             f"- File descriptors: soft limit raised to {a.nofile} for the runner, the servers and h2load.",
             "- Servers: " + "; ".join(f"`{n}`: `{shlex.join(b.server_argv[n])}`" for n in a.servers), ""]
    for variant in a.variants:
        server_cpus, load_cpus, threads, what = VARIANTS[variant]
        lines += [f"### {variant}: {what}", "",
                  "| connections | server | RPC/s best (all rounds) | server CPU µs/RPC | h2load CPU µs/RPC "
                  "| p50 / p99 ms | server RSS end / peak MiB | threads | server CPU use (% of one CPU) | notes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for conns in a.conns:
            for name in a.servers:
                runs = b.results.get((variant, conns, name), [])
                good = [r for r in runs if r.rps is not None]
                if not good:
                    notes = "; ".join(n for r in runs for n in r.notes)
                    lines.append(f"| {conns} | {name} | – | – | – | – | – | – | – | {notes} |")
                    continue
                best = max(good, key=lambda r: r.rps)
                allr = ", ".join(fmt(r.rps / 1e3, 1) + "k" for r in good)
                notes = sorted({n for r in runs for n in r.notes})
                lines.append(
                    f"| {conns} | {name} | **{fmt(best.rps, 0)}** ({allr}) | {fmt(best.cpu_us, 2)} | "
                    f"{fmt(best.load_us, 2)} | {ms(best.p50)} / {ms(best.p99)} | "
                    f"{mib(best.rss_kib)} / {mib(best.hwm_kib)} | {best.threads} | "
                    f"{best.server_util * 100:.0f}% | {'; '.join(notes)} |")
        lines += ["", "Load commands (best run of each row; the port changes per run):", ""]
        for conns in a.conns:
            for name in a.servers:
                good = [r for r in b.results.get((variant, conns, name), []) if r.rps is not None]
                if good:
                    lines.append(f"- {conns} × {name}: `{max(good, key=lambda r: r.rps).command}`")
        lines.append("")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--servers", default="ours,grpc-cpp,grpc-cpp-callback,grpc-go")
    ap.add_argument("--variants", default="shared,pinned")
    ap.add_argument("--conns", default="256,1024")
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=0.0, help="h2load --warm-up-time (HttpArena: none)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="Markdown file the run's section is appended to "
                    "(default: perf/results/<date>-getsum.md)")
    a = ap.parse_args()
    a.servers = a.servers.split(",")
    a.variants = a.variants.split(",")
    a.conns = [int(c) for c in a.conns.split(",")]
    known = server_commands(a.build)
    for name in a.servers:
        if name not in known:
            ap.error(f"unknown server {name} (known: {', '.join(known)})")
        if not os.path.exists(known[name][0]):
            ap.error(f"{known[name][0]} is missing: `make getsum-servers`")
    for v in a.variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v} (known: {', '.join(VARIANTS)})")
    if os.cpu_count() < 2:
        ap.error("needs 2 CPUs (0 and 1)")
    started = datetime.datetime.utcnow()
    machine = bench.machine_info()
    a.nofile = raise_nofile()
    b = GetSumBench(a)
    b.run()
    section = report(b, ["/usr/bin/python3", "perf/getsum_bench.py"] + sys.argv[1:], started, machine)
    out = a.out or os.path.join(HERE, "results", f"{started:%Y-%m-%d}-getsum.md")
    new = not os.path.exists(out)
    with open(out, "a") as f:
        if new:
            f.write("# HttpArena's gRPC unary profile (GetSum), side by side\n\n"
                    "Written by `perf/getsum_bench.py`; perf/README.md (\"HttpArena's gRPC unary "
                    "profile\") says how to read it.\n\n")
        f.write(section)
    print(section)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
