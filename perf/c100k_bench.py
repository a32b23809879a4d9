#!/usr/bin/python3
"""Issue 16: 100,000 idle h2c connections held by one server, then 10,000 of them active.

For each server (ours, gRPC C++, grpc-go; each pinned to CPU 0, the clients to CPU 1):
  1. canary at idle: h2load -c 1 -m 1 --rps R, sequential EmptyCalls on its own connection;
  2. hold-client ramps to N connections (one checked EmptyCall each, then idle), over
     source addresses 127.0.0.1..S: connections/s, failures by kind;
  3. server VmRSS growth / N and VmHWM, kernel memory (Slab, TCP socket pages) growth / N;
  4. the canary again with the N connections held: its p99 against the idle one;
  5. K of the N active at RATE calls/s in all: server CPU per RPC (per-thread schedstat, ns);
  6. the client quits: how long and how much CPU the server takes to close N connections;
  7. a fresh server with 16 connections at the same RATE: the CPU per RPC to compare with.
A server that gives up (refuses, times out, runs the machine low on memory, dies) is a
result: the row says where and how.

"ours-direct" is bench-server with ListenOptions::direct_descriptors on and --direct-shards
shards (6 by default, all on the server's CPU): its connections are slots of the shards'
io_uring file tables, not descriptors, so where RLIMIT_NOFILE's hard limit cannot be raised
it alone is run at the full N (each shard's table holds up to that limit; the clients are as
many hold-client processes as the limit needs), the descriptor servers at the limit.

Limits are raised for this process and its children only (RLIMIT_NOFILE); system-wide
sysctls change only when the machine's values cannot hold N connections, and are put back
on every exit (normal, error, Ctrl-C, SIGTERM). Each server's part runs under an exclusive
flock on /tmp/machine.lock (released between servers) unless --no-lock.

    /usr/bin/python3 perf/c100k_bench.py [--build build] [--servers ours,grpc-cpp,grpc-go]
        [--conns 100000] [--active 10000] [--rate 2000] [--out FILE]
"""
import argparse
import datetime
import fcntl
import os
import platform
import re
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (grpc_frame, percentile, latencies_from_log, server_commands)

SERVICE = "/grpc.testing.TestService/"
KIB = 1024


# ---- system settings, put back on exit
class Sysctls:
    """sysctl values changed for the run, restored by restore() (called from finally)."""

    def __init__(self):
        self.saved = []  # (path, old value)

    @staticmethod
    def path(name):
        return "/proc/sys/" + name.replace(".", "/")

    def get(self, name):
        with open(self.path(name)) as f:
            return f.read().strip()

    def set(self, name, value, log):
        old = self.get(name)
        if old.split() == str(value).split():
            return
        self.saved.append((name, old))
        with open(self.path(name), "w") as f:
            f.write(str(value))
        log(f"sysctl {name}: {old!r} -> {value!r} (restored on exit)")

    def restore(self, log):
        while self.saved:
            name, old = self.saved.pop()
            try:
                with open(self.path(name), "w") as f:
                    f.write(old)
                log(f"sysctl {name} restored to {old!r}")
            except OSError as e:
                log(f"sysctl {name}: could not restore {old!r}: {e}")


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ---- reading the machine and a process
def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])  # KiB
    return out


def sockstat():
    """TCP sockets in use and their buffer memory (pages) from /proc/net/sockstat."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                v = line.split()[1:]
                return {v[i]: int(v[i + 1]) for i in range(0, len(v), 2)}
    return {}


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cpu_ns(pid):
    """Run time of every thread of the process in ns (schedstat: user and kernel time)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        pass
    return total


def server_sockets(port):
    """TCP sockets with local port `port` that the server has not closed yet (neither
    listening nor in TIME_WAIT): its connections, descriptors or not."""
    want, n = f":{port:04X}", 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                parts = line.split(None, 4)
                if parts[1].endswith(want) and parts[3] not in ("0A", "06"):
                    n += 1
    return n


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# ---- processes
class Child:
    """A process with its stdout read line by line in a thread (stderr to a log file)."""

    def __init__(self, argv, log_path, stdin=False):
        self.argv = argv
        self.log = open(log_path, "w")
        self.log_path = log_path
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT)
        self.pid = self.proc.pid
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern, timeout, start=0, poll=None):
        """The first line at index >= start matching pattern, or None (timeout, exit, or poll() true)."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if rx.search(line):
                        return line
                if time.monotonic() >= end or self.proc.poll() is not None:
                    return None
                if poll and poll():
                    return None
                self.cond.wait(0.2)

    def send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def tail(self, n=3):
        self.log.flush()
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-n:])
        except OSError:
            return ""


def kv(line):
    return dict(x.split("=", 1) for x in line.split()[2:] if "=" in x) if line else {}


def total(reports, key):
    return sum(int(float(r[key])) for r in reports)


def kinds(reports, key):
    """Merges failure counts "a:1,b:2" of several clients."""
    out = {}
    for r in reports:
        if r.get(key, "none") != "none":
            for part in r[key].split(","):
                k, v = part.split(":")
                out[k] = out.get(k, 0) + int(v)
    return ",".join(f"{k}:{v}" for k, v in sorted(out.items())) or "none"


class Clients:
    """Several hold-client processes driven as one (a process holds at most RLIMIT_NOFILE sockets)."""

    def __init__(self, clients):
        self.list = clients
        self.conns = [int(c.argv[c.argv.index("--conns") + 1]) for c in clients]

    def alive(self):
        return all(c.proc.poll() is None for c in self.list)

    def wait_all(self, pattern, timeout, poll=None, starts=None):
        end = time.monotonic() + timeout
        out = []
        for i, c in enumerate(self.list):
            line = c.wait_line(pattern, max(0.0, end - time.monotonic()), starts[i] if starts else 0, poll)
            if not line:
                return []
            out.append(kv(line))
        return out

    def command_all(self, make, pattern, timeout, k=None):
        """Sends each client its command and waits for each one's answer line."""
        starts = [len(c.lines) for c in self.list]
        # With k: the k active connections shared out in proportion to each client's.
        share = [k * n // sum(self.conns) for n in self.conns] if k else self.conns
        if k:
            share[0] += k - sum(share)
        for i, c in enumerate(self.list):
            try:
                c.send(make(i, share[i]))
            except (BrokenPipeError, OSError):
                return []
        return self.wait_all(pattern, timeout, starts=starts)

    def why_not(self, timeout):
        for c in self.list:
            if c.proc.poll() is not None:
                return f"hold-client exited: {c.tail()}"
        return f"no ramp in {timeout} s"

    def stop(self):
        for c in self.list:
            c.stop(signal.SIGKILL)


class MachineLock:
    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        if self.enabled:
            self.f = open("/tmp/machine.lock", "a")
            fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            fcntl.flock(self.f, fcntl.LOCK_UN)
            self.f.close()
        return False


# ---- the run
class Bench:
    def __init__(self, a):
        self.a = a
        self.scratch = f"/tmp/c100k-{os.getpid()}"
        os.makedirs(self.scratch, exist_ok=True)
        self.body = os.path.join(self.scratch, "empty.body")
        with open(self.body, "wb") as f:
            f.write(bench.grpc_frame(b""))
        self.commands = []  # exact commands, for the result file
        self.results = {}
        self.children = []
        self.fd_cap = None  # RLIMIT_NOFILE hard limit when it could not be raised

    def log(self, *parts):
        print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)

    def cmd(self, argv):
        line = shlex.join(argv)
        if line not in self.commands:
            self.commands.append(line)
        return argv

    def start(self, argv, name, stdin=False):
        c = Child(argv, os.path.join(self.scratch, f"{name}.log"), stdin=stdin)
        # A client holding 100,000 sockets has nothing to flush: the kernel closes them.
        c.stop_signal = signal.SIGKILL if self.hold in argv else signal.SIGTERM
        self.children.append(c)
        return c

    def stop_all(self):
        for c in reversed(self.children):
            try:
                c.stop(c.stop_signal)
            except Exception as e:  # noqa: BLE001 - teardown goes on for the others
                self.log(f"stopping {c.argv[0]}: {e}")
        self.children.clear()

    @property
    def hold(self):
        return os.path.join(self.a.build, "perf/hold-client")

    def mem_low(self):
        return meminfo()["MemAvailable"] < self.a.mem_floor_gib * KIB * KIB

    # -- pieces
    def direct(self, name):
        return name == "ours-direct"

    def conns_for(self, name):
        """Connections run against `name`: descriptor servers stop at the limit (unless --beyond-limit)."""
        a = self.a
        if self.direct(name) or not self.fd_cap or a.beyond_limit:
            return a.conns
        return min(a.conns, self.fd_cap - a.fd_margin)

    def start_server(self, name):
        cmd = bench.server_commands(self.a.build)["ours"] + ["--direct", "on", "--shards", str(self.a.direct_shards)] \
            if self.direct(name) else bench.server_commands(self.a.build)[name]
        argv = ["taskset", "-c", str(self.a.server_core)] + cmd + ["--port", str(bench.free_port())]
        srv = self.start(self.cmd(argv), f"{name}-server-{len(self.children)}")
        line = srv.wait_line(r"listening on (\d+)", 30)
        if not line:
            raise RuntimeError(f"{name} did not start: {srv.tail()}")
        srv.port = int(re.search(r"listening on (\d+)", line).group(1))
        return srv

    def canary(self, port, label):
        log_path = os.path.join(self.scratch, f"canary-{label}.log")
        argv = ["taskset", "-c", str(self.a.load_core), "h2load", "-t", "1", "-c", "1", "-m", "1",
                "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", self.body,
                "--rps", str(self.a.canary_rps), "-D", f"{self.a.canary_seconds}s", "--log-file", log_path,
                f"http://127.0.0.1:{port}{SERVICE}EmptyCall"]
        self.cmd([x if x != log_path else "LOG" for x in argv])
        p = subprocess.run(argv, capture_output=True, text=True, timeout=self.a.canary_seconds + 30)
        if p.returncode != 0 or not os.path.exists(log_path):
            return {"error": f"h2load exited {p.returncode}: {p.stderr.strip()[-200:]}"}
        lat, bad = bench.latencies_from_log(log_path)
        os.unlink(log_path)
        r = bench.parse_h2load(p.stdout)
        return {"n": len(lat), "bad": bad + r.get("failed", 0) + r.get("errored", 0),
                "p50_ms": bench.percentile(lat, 50) / 1e3 if lat else None,
                "p99_ms": bench.percentile(lat, 99) / 1e3 if lat else None,
                "max_ms": lat[-1] / 1e3 if lat else None}

    def hold_clients(self, port, conns, name):
        """ceil(conns / per-process limit) hold-client processes sharing the connections."""
        per = self.a.per_client
        counts = [min(per, conns - i) for i in range(0, conns, per)]
        return Clients([self.hold_client(port, n, f"{name}-{i}") for i, n in enumerate(counts)])

    def hold_client(self, port, conns, name):
        argv = ["taskset", "-c", str(self.a.load_core), self.hold, "--port", str(port), "--conns", str(conns),
                "--inflight", str(self.a.inflight), "--sources", str(self.a.sources),
                "--timeout", str(self.a.setup_timeout)]
        self.cmd(argv)
        return self.start(argv, f"{name}-hold-{conns}", stdin=True)

    def active_window(self, srv, clients, k, rate):
        """K connections at RATE calls/s: warm-up, then a measured window. Returns figures."""
        if not clients.command_all(lambda i, n: f"active {n} {rate * n / k:g}", r"^hold-client active ", 10, k):
            raise RuntimeError("hold-client did not start its active phase")
        time.sleep(self.a.warmup)
        r0 = clients.command_all(lambda i, n: "report", r"^hold-client report ", 10)
        c0, t0 = cpu_ns(srv.pid), time.monotonic()
        time.sleep(self.a.seconds)
        r1 = clients.command_all(lambda i, n: "report", r"^hold-client report ", 10)
        c1, t1 = cpu_ns(srv.pid), time.monotonic()
        done = clients.command_all(lambda i, n: "idle", r"^hold-client active-done ", 10)
        if not r0 or not r1 or not done:
            raise RuntimeError("hold-client did not report")
        calls = total(r1, "calls_ok") - total(r0, "calls_ok")
        cpu_s = (c1 - c0) / 1e9
        return {"k": k, "rate": rate, "calls": calls, "wall_s": t1 - t0, "rpc_per_s": calls / (t1 - t0),
                "server_cpu_s": cpu_s, "cpu_us_per_rpc": cpu_s * 1e6 / calls if calls else None,
                "server_util": cpu_s / (t1 - t0),
                "failed": total(done, "calls_failed"), "failure_kinds": kinds(done, "call_failure_kinds"),
                "skipped_busy": total(done, "skipped_busy"), "p50_ms": max(float(d["p50_ms"]) for d in done),
                "p99_ms": max(float(d["p99_ms"]) for d in done), "lost": total(done, "lost"),
                "lost_kinds": kinds(done, "lost_kinds")}

    def run_server(self, name):
        a = self.a
        conns = self.conns_for(name)
        res = {"server": name}
        self.results[name] = res
        srv = self.start_server(name)
        if a.memory_only:  # one warm-up call instead of the canaries
            bench.grpc_call(srv.port, "EmptyCall", bench.grpc_frame(b""))
        else:
            res["canary_warm"] = self.canary(srv.port, "warm")  # first connection, caches, code pages
            res["canary_idle"] = self.canary(srv.port, "idle")
        time.sleep(1)
        st0, m0, s0 = proc_status(srv.pid), meminfo(), sockstat()
        res["rss0_kib"], res["threads0"] = st0.get("VmRSS"), st0.get("Threads")
        cpu0 = cpu_ns(srv.pid)
        self.log(f"{name}: idle canary {res.get('canary_idle')}; RSS {st0.get('VmRSS')} KiB; ramping to {conns}")
        guard = {}

        def watch():
            if self.mem_low():
                guard["why"] = f"MemAvailable below {a.mem_floor_gib} GiB"
            elif srv.proc.poll() is not None:
                guard["why"] = f"server exited ({srv.proc.returncode})"
            return bool(guard)

        # In two steps (half, then the rest), so that the second half's growth gives the
        # marginal cost of a connection without the server's one-time growth (receive
        # buffers entering the ring, pools, page tables) that the first connections pay.
        half = conns // 2 if conns >= 1000 else 0
        clients, ramps, st_half, step_secs = Clients([]), [], None, []
        for step, n in enumerate([half, conns - half] if half else [conns]):
            more = self.hold_clients(srv.port, n, f"{name}-{'ab'[step]}")
            clients = Clients(clients.list + more.list)
            got = more.wait_all(r"^hold-client ramp ", a.ramp_timeout, poll=watch)
            if not got:
                ramps = []
                break
            ramps += got
            # A step's clients ramp side by side: the step lasts as long as its slowest.
            step_secs.append(max(float(r["seconds"]) for r in got))
            if step == 0 and half:
                time.sleep(a.settle)
                st_half, ready_half = proc_status(srv.pid), total(got, "ready")
        ramp_cpu_s = (cpu_ns(srv.pid) - cpu0) / 1e9
        if not ramps:
            # Where it gave up: what the clients got so far and what the server holds.
            why = guard.get("why") or clients.why_not(a.ramp_timeout)
            rep = clients.command_all(lambda i, n: "report", r"^hold-client report ", 10) if clients.alive() else []
            st = proc_status(srv.pid)
            res["gave_up"] = {"why": why, "ready": total(rep, "ready") if rep else None,
                              "server_fds": open_fds(srv.pid), "rss_kib": st.get("VmRSS"), "hwm_kib": st.get("VmHWM"),
                              "server_alive": srv.proc.poll() is None, "server_log": srv.tail(2)}
            self.log(f"{name}: gave up: {res['gave_up']}")
            clients.stop()
            srv.stop()
            return
        secs = sum(step_secs)
        ramp = {"conns": conns, "ready": total(ramps, "ready"), "failed": total(ramps, "failed"),
                "failure_kinds": kinds(ramps, "failure_kinds"),
                "first_errno": ",".join(sorted({r["first_errno"] for r in ramps})), "seconds": secs,
                "conn_per_s": total(ramps, "ready") / secs, "setup_p50_ms": max(float(r["setup_p50_ms"]) for r in ramps),
                "setup_p99_ms": max(float(r["setup_p99_ms"]) for r in ramps), "clients": len(ramps)}
        res["ramp"] = ramp
        ready = ramp["ready"]
        res["ramp_server_cpu_us_per_conn"] = ramp_cpu_s * 1e6 / max(1, ready)
        self.log(f"{name}: ramp {ramp}")
        time.sleep(a.settle)
        st1, m1, s1 = proc_status(srv.pid), meminfo(), sockstat()
        res.update({"rss1_kib": st1.get("VmRSS"), "hwm_kib": st1.get("VmHWM"), "threads1": st1.get("Threads"),
                    "server_fds": open_fds(srv.pid),
                    "client_rss_kib": sum(proc_status(c.pid).get("VmRSS", 0) for c in clients.list),
                    "kib_per_conn": (st1["VmRSS"] - st0["VmRSS"]) / max(1, ready),
                    "rss_half_kib": st_half.get("VmRSS") if st_half else None,
                    "marginal_kib_per_conn": (st1["VmRSS"] - st_half["VmRSS"]) / max(1, ready - ready_half)
                    if st_half else None,
                    "slab_kib_per_conn": (m1["Slab"] - m0["Slab"]) / max(1, ready),
                    "tcp_mem_pages": (s0.get("mem"), s1.get("mem")), "tcp_inuse": (s0.get("inuse"), s1.get("inuse")),
                    "mem_used_kib_per_conn": (m0["MemAvailable"] - m1["MemAvailable"]) / max(1, ready)})
        self.log(f"{name}: RSS {st0['VmRSS']} -> {res['rss_half_kib']} -> {st1['VmRSS']} KiB "
                 f"({res['kib_per_conn']:.2f} KiB/conn, second half {res['marginal_kib_per_conn']}), "
                 f"HWM {st1.get('VmHWM')}, slab +{(m1['Slab'] - m0['Slab']) / KIB:.0f} MiB")
        if not a.memory_only:
            res["canary_held"] = self.canary(srv.port, "held")
            self.log(f"{name}: canary with {ready} held: {res['canary_held']}")
        if a.active:
            try:
                res["active"] = self.active_window(srv, clients, min(a.active, ready), a.rate)
                self.log(f"{name}: active {res['active']}")
            except RuntimeError as e:
                res["active_error"] = str(e)
        after = clients.command_all(lambda i, n: "report", r"^hold-client report ", 10)
        res["after"] = {"lost": total(after, "lost"), "lost_kinds": kinds(after, "lost_kinds"),
                        "ready": total(after, "ready")} if after else {}
        res["after_rss_kib"] = proc_status(srv.pid).get("VmRSS")
        # Teardown: the clients go (the kernel closes their sockets); the server must notice
        # every EOF and free every connection. Wall time until its fd count is back.
        # A direct-descriptor server's connections are no descriptors: count its sockets
        # on the port that are not yet closed on its side instead.
        held = (lambda: server_sockets(srv.port)) if self.direct(name) else (lambda: open_fds(srv.pid))
        before = held()
        c0, t0 = cpu_ns(srv.pid), time.monotonic()
        clients.stop()
        base = before - ready
        while time.monotonic() - t0 < a.teardown_timeout and held() > base + 16:
            time.sleep(0.05)
        res["teardown"] = {"seconds": time.monotonic() - t0, "server_cpu_s": (cpu_ns(srv.pid) - c0) / 1e9,
                           "fds_left": held() - base, "rss_kib": proc_status(srv.pid).get("VmRSS")}
        self.log(f"{name}: teardown {res['teardown']}")
        srv.stop()
        if a.active:
            # The same calls at the same rate on 16 connections of a fresh server.
            srv = self.start_server(name)
            clients = Clients([self.hold_client(srv.port, 16, name + "-16")])
            if clients.wait_all(r"^hold-client ramp ", 30):
                try:
                    res["active16"] = self.active_window(srv, clients, 16, a.rate)
                    self.log(f"{name}: 16 connections {res['active16']}")
                except RuntimeError as e:
                    res["active16_error"] = str(e)
            clients.stop()
            srv.stop()

    # -- the result file
    def write(self, started):
        a = self.a
        out = a.out or os.path.join(HERE, "results", f"{datetime.date.today()}-c100k.md")
        w = []
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        with open("/proc/cpuinfo") as f:
            model = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "?")
        w.append(f"# 100,000 connections on one machine (issue 16), {started}\n")
        w.append(f"Machine: {model}, {os.cpu_count()} CPUs, {meminfo()['MemTotal'] // KIB} MiB, "
                 f"Linux {platform.release()}; commit {rev.stdout.strip()}; load average at the end "
                 f"{os.getloadavg()[0]:.2f}.\n")
        if self.fd_cap:
            w.append(f"**Descriptor limit**: RLIMIT_NOFILE's hard limit here is {self.fd_cap} and cannot be raised "
                     f"(the sandbox withholds CAP_SYS_RESOURCE; fs.nr_open is {Sysctls().get('fs.nr_open')}), so no "
                     f"process can hold more than {self.fd_cap} descriptors: "
                     + ", ".join(f"{n}: {self.conns_for(n)} connections" for n in self.results)
                     + (" (on purpose past the descriptor servers' limit)" if a.beyond_limit else "")
                     + "; ours-direct holds its connections as io_uring direct descriptors, "
                     f"{a.direct_shards} shards' tables of up to {self.fd_cap} each.\n")
        if a.memory_only:
            w.append("**Memory only** (`--memory-only`, run under a shared lock while other work used the "
                     "machine): no canary, no active phase; conn/s and teardown seconds are not measurements "
                     "here, only counts, memory and how servers fail.\n")
        w.append(f"Command: `{shlex.join(['/usr/bin/python3', 'perf/c100k_bench.py'] + sys.argv[1:])}`; server on "
                 f"CPU {a.server_core}, hold-client and h2load on CPU {a.load_core}. Connections over "
                 f"{a.sources} source addresses, {a.inflight} in setup at once; canary: h2load, one "
                 f"connection, {a.canary_rps} sequential EmptyCalls/s for {a.canary_seconds} s; "
                 f"active: {a.active} connections at {a.rate:g} calls/s in all, {a.warmup} s warm-up and "
                 f"{a.seconds} s measured; the 16-connection baseline is the same rate on a fresh server.\n")
        w.append("| server | connections held | conn/s (ramp) | server µs/conn (ramp) | KiB/conn (RSS, all / second half) | "
                 "VmHWM MiB | kernel slab KiB/conn | canary p99 idle → held (ms) | "
                 "µs/RPC, K active | µs/RPC, 16 conns | teardown s (CPU s) | notes |")
        w.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")

        def f(v, fmt):
            return "—" if v is None else format(v, fmt)

        for name, r in self.results.items():
            notes = []
            if "gave_up" in r:
                g = r["gave_up"]
                notes.append(f"gave up: {g['why']}; {g.get('ready') or '?'} ready; server fds {g['server_fds']}, "
                             f"RSS {f((g.get('rss_kib') or 0) / KIB, '.0f')} MiB; {g.get('server_log', '')}")
                w.append(f"| {name} | — | — | — | — | — | — | — | — | — | — | {'; '.join(notes)} |")
                continue
            ramp = r["ramp"]
            if ramp.get("failed"):
                notes.append(f"setup failures {ramp['failure_kinds']} (first errno: {ramp['first_errno']})")
            if r.get("after", {}).get("lost"):
                notes.append(f"lost while held: {r['after']['lost_kinds']}")
            ci, ch = r.get("canary_idle", {}), r.get("canary_held", {})
            for label, c in (("idle", ci), ("held", ch)):
                if c.get("error") or c.get("bad"):
                    notes.append(f"canary {label}: {c.get('error') or str(c['bad']) + ' failed'}")
            act, a16 = r.get("active", {}), r.get("active16", {})
            for label, x in (("active", act), ("16 conns", a16)):
                if x.get("failed") or x.get("skipped_busy"):
                    notes.append(f"{label}: {x['failed']} failed ({x['failure_kinds']}), {x['skipped_busy']} late")
                if x:
                    notes.append(f"{label}: {x['rpc_per_s']:.0f} RPC/s, p99 {x['p99_ms']:.2f} ms, server "
                                 f"{100 * x['server_util']:.1f}% of a core")
            for k in ("active_error", "active16_error"):
                if k in r:
                    notes.append(r[k])
            notes.append(f"RSS {r['rss0_kib'] / KIB:.0f} → {r['rss1_kib'] / KIB:.0f} MiB, client RSS "
                         f"{(r.get('client_rss_kib') or 0) / KIB:.0f} MiB, threads {r.get('threads0')} → "
                         f"{r.get('threads1')}, TCP pages {r['tcp_mem_pages'][0]} → {r['tcp_mem_pages'][1]}")
            ratio = (ch["p99_ms"] / ci["p99_ms"]) if ch.get("p99_ms") and ci.get("p99_ms") else None
            td = r.get("teardown", {})
            w.append(f"| {name} | {ramp['ready']} | {float(ramp['conn_per_s']):,.0f} | "
                     f"{r['ramp_server_cpu_us_per_conn']:.1f} | {r['kib_per_conn']:.2f} / {f(r.get('marginal_kib_per_conn'), '.2f')} | "
                     f"{f((r.get('hwm_kib') or 0) / KIB, '.0f')} | {r['slab_kib_per_conn']:.2f} | "
                     f"{f(ci.get('p99_ms'), '.3f')} → {f(ch.get('p99_ms'), '.3f')} ({f(ratio, '.2f')}×) | "
                     f"{f(act.get('cpu_us_per_rpc'), '.2f')} | {f(a16.get('cpu_us_per_rpc'), '.2f')} | "
                     f"{f(td.get('seconds'), '.1f')} ({f(td.get('server_cpu_s'), '.2f')}) | {'; '.join(notes)} |")
        w.append("\nCommands (PORT: the server's; LOG: h2load's per-request log):\n")
        w += [f"    {c}" for c in self.commands]
        w.append("\nRaw figures (Python repr):\n")
        w += [f"    {name}: {r!r}" for name, r in self.results.items()]
        text = "\n".join(w) + "\n"
        with open(out, "a" if a.append else "w") as fo:
            fo.write(text)
        print(text)
        self.log(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--servers", default="ours-direct,grpc-cpp,grpc-go",
                    help="ours, ours-direct (bench-server --direct on --shards DIRECT_SHARDS), grpc-cpp, grpc-go")
    ap.add_argument("--direct-shards", type=int, default=6,
                    help="ours-direct's shards: each holds up to RLIMIT_NOFILE connections")
    ap.add_argument("--conns", type=int, default=100000)
    ap.add_argument("--active", type=int, default=10000, help="connections active in the second phase (0: skip)")
    ap.add_argument("--rate", type=float, default=2000,
                    help="calls/s of the active connections together (2,000: one call per 5 s each at 10,000; "
                         "grpc-go needs 150-260 µs of CPU per call at such rates, 10,000/s would not fit its core)")
    ap.add_argument("--sources", type=int, default=16)
    ap.add_argument("--inflight", type=int, default=512, help="connections in setup at once")
    ap.add_argument("--setup-timeout", type=float, default=20)
    ap.add_argument("--ramp-timeout", type=float, default=120)
    ap.add_argument("--teardown-timeout", type=float, default=60)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between the ramp and the RSS reading")
    ap.add_argument("--canary-rps", type=int, default=200)
    ap.add_argument("--canary-seconds", type=int, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--mem-floor-gib", type=float, default=3.0,
                    help="give up when MemAvailable falls below this (the machine is shared)")
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    ap.add_argument("--beyond-limit", action="store_true",
                    help="when RLIMIT_NOFILE cannot be raised, still open --conns (servers hit EMFILE)")
    ap.add_argument("--fd-margin", type=int, default=1000,
                    help="descriptors left to a server beside its connections when the limit caps --conns")
    ap.add_argument("--memory-only", action="store_true",
                    help="no canary, no active phase, no lock: connection counts, memory, limits and "
                         "teardown only (not timed figures; run it under flock -s)")
    ap.add_argument("--out")
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--no-lock", action="store_true", help="the caller holds /tmp/machine.lock already")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    if a.memory_only:
        a.active, a.no_lock = 0, True
    b = Bench(a)
    sysctls = Sysctls()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    old_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    try:
        # Descriptors: each of the server and the client holds one per connection, plus its
        # own. Raised for this process and what it starts, not for the machine; the hard limit
        # can go up to fs.nr_open (root), which changes only when it is too low.
        need = a.conns + 4096
        if int(sysctls.get("fs.nr_open")) < need:
            sysctls.set("fs.nr_open", need, b.log)
        try:
            target = max(need, old_nofile[1])  # never below the hard limit we had: it could not come back
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
        except (ValueError, OSError):
            # Raising the hard limit takes CAP_SYS_RESOURCE. Without it no process here can
            # hold more than the hard limit's descriptors, whichever server it is.
            hard = old_nofile[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            b.fd_cap = hard
            b.log(f"RLIMIT_NOFILE hard limit {hard} cannot be raised (no CAP_SYS_RESOURCE): {a.conns} connections "
                  f"asked, descriptor servers run at {b.conns_for('ours')}, ours-direct at {b.conns_for('ours-direct')}"
                  + (" (past the servers' limit)" if a.beyond_limit else ""))
        lim = resource.getrlimit(resource.RLIMIT_NOFILE)
        a.per_client = min(a.conns, lim[0] - 256)
        if a.direct_shards * lim[0] < a.conns and "ours-direct" in a.servers:
            b.log(f"ours-direct: {a.direct_shards} shards x {lim[0]} slots cannot hold {a.conns}")
        b.log(f"RLIMIT_NOFILE {old_nofile} -> {lim} for this process and its children; "
              f"hold-client processes of up to {a.per_client} connections")
        # Ports: every source address has the whole ephemeral range towards the one server port.
        lo, hi = (int(x) for x in sysctls.get("net.ipv4.ip_local_port_range").split())
        if (hi - lo + 1) * a.sources < a.conns * 1.2 + 2000:
            sysctls.set("net.ipv4.ip_local_port_range", "10000 65000", b.log)
        b.log(f"somaxconn {sysctls.get('net.core.somaxconn')}, {a.inflight} connections in setup at once; "
              f"ports {(hi - lo + 1)} per source × {a.sources} sources; MemAvailable "
              f"{meminfo()['MemAvailable'] // KIB} MiB")
        for name in a.servers.split(","):
            with MachineLock(not a.no_lock):
                try:
                    b.run_server(name)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    b.results.setdefault(name, {"server": name})["gave_up"] = {"why": str(e), "server_fds": -1}
                    b.log(f"{name}: {e}")
                finally:
                    b.stop_all()
        b.write(started)
    finally:
        b.stop_all()
        sysctls.restore(b.log)
        resource.setrlimit(resource.RLIMIT_NOFILE, old_nofile)


if __name__ == "__main__":
    main()
