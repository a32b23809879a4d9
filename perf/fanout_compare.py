#!/usr/bin/python3
"""Fan-out, ours against grpc-go (issue 15): `make fanout-compare`.

Each round starts a fresh server (build/perf/fanout-server on 2 shards, then
build/perf/grpc-go-fanout-server with GOMAXPROCS=2; then the other order in the next round),
runs build/perf/fanout-client against it as a separate process (N subscribers, then the
phases), and stops the server by closing its stdin. Rounds interleave the servers (A B, B A,
A B, ...). Optionally each round also runs the in-process build/perf/fanout-bench.
Writes a markdown result with the exact commands, every raw line and the medians.
Use Debian's /usr/bin/python3.
"""
import argparse
import datetime
import fcntl
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

DEFAULT_PHASES = ["burst64:128:64:0", "burst1:20:1:0", "rate5:25:25:200000"]


def parse_kv(line):
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line)}


class Lock:
    """An exclusive flock on the machine's measurement lock around one run (or nothing)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        if self.path:
            self.f = open(self.path, "a")
            fcntl.flock(self.f, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        if self.path:
            fcntl.flock(self.f, fcntl.LOCK_UN)
            self.f.close()


def run_server(name, server_cmd, client_args, env, log):
    server = subprocess.Popen(server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    line = server.stdout.readline()
    m = re.match(r"listening on (\d+)", line)
    if not m:
        server.kill()
        raise SystemExit(f"{name}: no 'listening on' line: {line!r}")
    port = m.group(1)
    cmd = client_args + ["--port", port, "--server-pid", str(server.pid)]
    log.append(f"$ {' '.join(shlex.quote(c) for c in server_cmd)}   # pid {server.pid}, port {port}")
    log.append(f"$ {' '.join(shlex.quote(c) for c in cmd)}")
    client = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    server.stdin.close()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    rest = server.stdout.read().strip()
    out = client.stdout.strip().splitlines()
    log.extend(out)
    if rest:
        log.append(f"[{name} server output] {rest}")
    if client.returncode != 0:
        log.append(f"[{name}] fanout-client exited {client.returncode}")
    subscribed = next((parse_kv(l) for l in out if l.startswith("subscribed ")), {})
    results = {parse_kv(l)["phase"]: parse_kv(l) for l in out if l.startswith("result ")}
    end = next((parse_kv(l) for l in out if l.startswith("end ")), {})
    return subscribed, results, end, client.returncode


def run_inprocess(build, cpus, subscribers, messages, burst, log):
    cmd = ["taskset", "-c", cpus, f"{build}/perf/fanout-bench", "--subscribers", str(subscribers),
           "--shards", "2", "--messages", str(messages), "--burst", str(burst)]
    log.append(f"$ {' '.join(cmd)}")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    log.extend(p.stdout.strip().splitlines())
    r = {}
    m = re.search(r"([\d.]+) messages/s", p.stdout)
    if m:
        r["msgs_per_s"] = m.group(1)
    m = re.search(r"p50 (\d+) us, p99 (\d+) us, max (\d+) us", p.stdout)
    if m:
        r["p50_us"], r["p99_us"], r["max_us"] = m.groups()
    return r


def med(values):
    values = [float(v) for v in values]
    return (statistics.median(values), min(values), max(values)) if values else (float("nan"),) * 3


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--subscribers", type=int, default=10000)
    ap.add_argument("--phase", action="append", help="NAME:MESSAGES:BURST:INTERVAL_US (fanout-client); "
                    f"default {' '.join(DEFAULT_PHASES)}")
    ap.add_argument("--queue", type=int, default=256)
    ap.add_argument("--server-cpus", default="0,1")
    ap.add_argument("--client-cpus", default="0,1")
    ap.add_argument("--servers", default="ours,grpc-go")
    ap.add_argument("--inprocess", action="store_true", help="also run fanout-bench (ours, in one process) each round")
    ap.add_argument("--lock", default="", help="flock this file exclusively around each run (e.g. /tmp/machine.lock)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    phases = args.phase or DEFAULT_PHASES
    b = args.build
    servers = {
        "ours": ["taskset", "-c", args.server_cpus, f"{b}/perf/fanout-server", "--shards", "2",
                 "--queue", str(args.queue), "--policy", "disconnect"],
        "grpc-go": ["taskset", "-c", args.server_cpus, f"{b}/perf/grpc-go-fanout-server",
                    "--queue", str(args.queue), "--policy", "disconnect"],
    }
    names = [s for s in args.servers.split(",") if s]
    env = dict(os.environ, GOMAXPROCS="2")
    client = ["taskset", "-c", args.client_cpus, f"{b}/perf/fanout-client", "--subscribers", str(args.subscribers)]
    for p in phases:
        client += ["--phase", p]
    first = phases[0].split(":")

    log, rows = [], {n: [] for n in names}
    inproc = []
    load0 = os.getloadavg()
    started = datetime.datetime.now()
    for r in range(args.rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for n in order:
            log.append(f"--- round {r + 1}, {n}")
            with Lock(args.lock):
                res = run_server(n, servers[n], client, env, log)
            rows[n].append(res)
            print(f"round {r + 1} {n}: " + ", ".join(
                f"{k} {v.get('msgs_per_s')} msg/s p99 {v.get('p99_us')} us {v.get('server_us_per_msg')} us/msg"
                for k, v in res[1].items()), flush=True)
        if args.inprocess:
            log.append(f"--- round {r + 1}, ours in one process (fanout-bench)")
            with Lock(args.lock):
                inproc.append(run_inprocess(b, args.server_cpus, args.subscribers, first[1], first[2], log))
            print(f"round {r + 1} in-process: {inproc[-1]}", flush=True)
    load1 = os.getloadavg()

    out = []
    today = started.strftime("%Y-%m-%d")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    head = subprocess.run(["git", "log", "-1", "--format=%h"], stdout=subprocess.PIPE, text=True).stdout.strip()
    out.append(f"# Fan-out: ours against grpc-go, {today} ({head})\n")
    out.append(f"Machine: {cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}; load average "
               f"{load0[0]:.2f} at start, {load1[0]:.2f} at end. Command: "
               f"`{' '.join(shlex.quote(a) for a in sys.argv)}`. Servers on CPUs {args.server_cpus}, "
               f"the client on CPUs {args.client_cpus}: on a 2-core machine they share both cores.\n")
    out.append("| phase | server | messages/s | p50 ms | p99 ms | max ms | from request p50 / p99 / max ms | "
               "last publish ms | server CPU µs/msg | server cores busy | "
               "client CPU µs/msg | server RSS MiB (subscribed → end) | KiB per subscriber | failures |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for p in phases:
        pname = p.split(":")[0]
        for n in names:
            rs = [res[1].get(pname) for res in rows[n]]
            rs = [x for x in rs if x]
            if not rs:
                out.append(f"| {pname} | {n} | no result | | | | | | | | | | | |")
                continue
            tput, us, p50, p99, mx = (med([x[k] for x in rs]) for k in
                                       ("msgs_per_s", "server_us_per_msg", "p50_us", "p99_us", "max_us"))
            cores = med([x["server_cores"] for x in rs])
            a50, a99, amx = (med([x[k] for x in rs]) for k in ("asked_p50_us", "asked_p99_us", "asked_max_us"))
            pub = med([re.search(r"publish_ms (\d+)", x["stats"]).group(1) for x in rs])
            cus = med([x["client_us_per_msg"] for x in rs])
            rss0 = med([res[0].get("server_rss_kib", 0) for res in rows[n]])
            rss1 = med([x["server_rss_kib"] for x in rs])
            kps = med([res[0].get("server_kib_per_subscriber", 0) for res in rows[n]])
            fails = sum(int(x["delivered"]) != int(x["expected"]) or x["stalled"] != "0" or
                        "disconnected 0" not in x["stats"] for x in rs)
            fails += sum(res[3] != 0 for res in rows[n])
            out.append(f"| {pname} | {n} | {fmt(tput[0])} ({fmt(tput[1])}–{fmt(tput[2])}) | {p50[0] / 1000:.1f} | "
                       f"{p99[0] / 1000:.1f} ({p99[1] / 1000:.1f}–{p99[2] / 1000:.1f}) | {mx[0] / 1000:.1f} | "
                       f"{a50[0] / 1000:.1f} / {a99[0] / 1000:.1f} / {amx[0] / 1000:.1f} | {pub[0]:,.0f} | "
                       f"{us[0]:.2f} ({us[1]:.2f}–{us[2]:.2f}) | {cores[0]:.2f} | {cus[0]:.2f} | "
                       f"{rss0[0] / 1024:.0f} → {rss1[0] / 1024:.0f} | {kps[0]:.1f} | {fails} |")
    if inproc:
        t, p50, p99, mx = (med([x.get(k, "nan") for x in inproc]) for k in ("msgs_per_s", "p50_us", "p99_us", "max_us"))
        out.append(f"| {first[0]} | ours in one process (fanout-bench) | {fmt(t[0])} ({fmt(t[1])}–{fmt(t[2])}) | "
                   f"{p50[0] / 1000:.1f} | {p99[0] / 1000:.1f} | {mx[0] / 1000:.1f} | | | | | | | | |")
    out.append("\nMedians over rounds (min–max in brackets). A phase `NAME:MESSAGES:BURST:INTERVAL_US`: "
               + ", ".join(f"`{p}`" for p in phases) + ". p50/p99/max: from the server's CLOCK_MONOTONIC stamp "
               "when its publisher queued the message to the client's read; from request: from the client's "
               "`publish` command (plus i × interval for the i-th message of a fixed-rate job); last publish: "
               "how long the server's publisher took over its last job. failures: rounds with a message missing, a stall, "
               "a disconnected subscriber or a client exiting non-zero.\n")
    out.append("## Raw output\n\n```")
    out.extend(log)
    out.append("```")
    text = "\n".join(out) + "\n"
    path = args.out or f"perf/results/{today}-fanout-vs-grpc-go.md"
    with open(path, "w") as f:
        f.write(text)
    print(text.split("## Raw output")[0])
    print(f"written to {path}")


if __name__ == "__main__":
    main()
