# systemd integration without systemd as PID 1: this test plays the service manager.
#  - sd_notify: it owns the NOTIFY_SOCKET (a unix datagram socket) and checks READY=1 with
#    STATUS=, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 with EXTEND_TIMEOUT_USEC= while
#    the grace runs, in that order and at those times; a shard blocked on purpose stops the
#    pings for longer than WATCHDOG_USEC (systemd would restart the service).
#  - journal: with JOURNAL_STREAM naming stderr, log lines carry "<N>" priorities.
#  - socket activation: systemd-socket-activate starts example-server on its first
#    connection with a passed socket, and the real client (Python grpcio) is answered; a
#    passed datagram socket is refused with an error naming it.
#  - restart: the test holds a listening socket, passes it to example-server generation 1,
#    SIGTERMs it and starts generation 2 on the same socket while a client keeps calling:
#    every call is answered OK.
# Run: BUILD=build /usr/bin/python3 tests/e2e/systemd_test.py
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_report import Report, Skip  # noqa: E402

import grpc  # noqa: E402  (Debian's python3-grpcio, for /usr/bin/python3)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
TEST_SERVER = os.path.join(BUILD, "bin", "systemd-test-server")
EXAMPLE_SERVER = os.path.join(BUILD, "bin", "example-server")
HELLO_YOU = b"\n\x03you"  # helloworld.HelloRequest{name: "you"}

WATCHDOG_USEC = 600_000  # pings due every 300 ms; systemd would act after 600 ms without one
PING_S = WATCHDOG_USEC / 2e6


class NotifySocket:
    """The service manager's end of sd_notify: a unix datagram socket in a private
    directory; every datagram is kept with its arrival time as (t, {field: value})."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="uringrpc-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        self.sock.settimeout(0.1)
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def wait_for(self, key, timeout=10.0, after=0.0):
        """The first message carrying `key` that arrived after `after`, or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, f in self.snapshot():
                if key in f and t > after:
                    return t, f
            time.sleep(0.02)
        return None

    def pings(self, start=0.0, end=float("inf")):
        return [t for t, f in self.snapshot() if f.get("WATCHDOG") == "1" and start <= t <= end]

    def close(self):
        self.closed = True
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """A server process with stdout and stderr read by threads, line by line."""

    def __init__(self, argv, env=None, pass_fd=None, fdname="grpc"):
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("WATCHDOG_USEC", None)
        full_env.pop("JOURNAL_STREAM", None)
        full_env.update(env or {})
        pass_fds = ()
        if pass_fd is not None:
            # As systemd does: the socket as fd 3, LISTEN_PID the server's own pid ($$ of
            # the shell that execs it), LISTEN_FDS and LISTEN_FDNAMES.
            script = ('fd=$1; shift; if [ "$fd" != 3 ]; then exec 3<&"$fd"; eval "exec $fd<&-"; fi; '
                      'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=' + fdname + ' exec "$@"')
            argv = ["bash", "-c", script, "bash", str(pass_fd)] + argv
            pass_fds = (pass_fd,)
        self.proc = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, pass_fds=pass_fds)
        self.out, self.err = [], []
        self.lock = threading.Lock()
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink):
        for line in stream:
            with self.lock:
                sink.append(line.rstrip("\n"))

    def wait_line(self, prefix, timeout=10.0, stream="out"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for line in self.out if stream == "out" else self.err:
                    if line.startswith(prefix):
                        return line
            if self.proc.poll() is not None and time.monotonic() > end - timeout + 0.5:
                time.sleep(0.2)  # let the pumps finish, then look once more
                with self.lock:
                    lines = list(self.out if stream == "out" else self.err)
                return next((l for l in lines if l.startswith(prefix)), None)
            time.sleep(0.02)
        return None

    def stderr_lines(self):
        with self.lock:
            return list(self.err)

    def terminate(self, timeout=20.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed"


def call(port, method, request, timeout=10.0):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return channel.unary_unary(method)(request, timeout=timeout)


def call_in_thread(port, method, request, timeout=10.0):
    """Starts a call; returns a dict filled with 'reply' or 'code' when it ends, and the thread."""
    result = {}

    def run():
        try:
            result["reply"] = call(port, method, request, timeout)
        except grpc.RpcError as e:
            result["code"] = e.code()
        result["ended"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return result, t


def port_of(line):
    return int(line.split()[2])


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


# ---------------------------------------------------------------- cases

def notify_life_cycle():
    """READY=1 with STATUS= naming the port and the shards, then WATCHDOG=1 every
    WATCHDOG_USEC/2, then on SIGTERM STOPPING=1 with EXTEND_TIMEOUT_USEC= = grace + margin,
    more EXTEND_TIMEOUT_USEC= about every second while the grace runs, never a ping after
    STOPPING=1; the call outliving the grace ends UNAVAILABLE and the server exits 0."""
    problems = []
    notify = NotifySocket()
    server = Server([TEST_SERVER, "--shards", "2", "--port", "0", "--grace-ms", "2500"],
                    env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC), "URINGRPC_LOG": "info"})
    try:
        line = server.wait_line("listening on ")
        if not line:
            return [f"server did not start: {server.stderr_lines()}"]
        port = port_of(line)
        ready = notify.wait_for("READY")
        if not ready:
            return ["no READY=1"]
        t_ready, fields = ready
        want_status = f"serving on 127.0.0.1:{port} (h2c); 2 shards"
        if fields.get("STATUS") != want_status:
            problems.append(f"READY's STATUS={fields.get('STATUS')!r}, want {want_status!r}")
        if notify.snapshot()[0][1].get("READY") != "1":
            problems.append(f"first message is not READY=1: {notify.snapshot()[0]}")
        if call(port, "/systemd.Test/Echo", b"hi") != b"hi":
            problems.append("Echo did not answer")
        time.sleep(8 * PING_S)
        pings = notify.pings(t_ready)
        if len(pings) < 6:
            problems.append(f"{len(pings)} WATCHDOG=1 in {8 * PING_S:.1f} s after READY, want at least 6")
        elif pings[0] - t_ready > 2 * PING_S:
            problems.append(f"first ping {pings[0] - t_ready:.3f} s after READY (due within {2 * PING_S:.1f} s)")
        bad = [round(g, 3) for g in gaps(pings) if not 0.8 * PING_S <= g < WATCHDOG_USEC / 1e6]
        if bad:
            problems.append(f"ping gaps {bad} s outside [{0.8 * PING_S:.2f}, {WATCHDOG_USEC / 1e6:.2f}) (every "
                            f"WATCHDOG_USEC/2 = {PING_S:.2f} s, never WATCHDOG_USEC without one)")
        info = [l for l in server.stderr_lines() if "systemd: READY=1" in l]
        if not info or not info[0].startswith("uringrpc info"):
            problems.append(f"no unprefixed info line outside the journal: {server.stderr_lines()}")

        slow, slow_thread = call_in_thread(port, "/systemd.Test/Sleep", b"6000")
        time.sleep(0.3)  # the call is in flight
        t_term = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        stopping = notify.wait_for("STOPPING", after=t_ready)
        if not stopping:
            return problems + ["no STOPPING=1 after SIGTERM"]
        t_stop, fields = stopping
        if fields.get("EXTEND_TIMEOUT_USEC") != str((2500 + 5000) * 1000):
            problems.append(f"STOPPING's EXTEND_TIMEOUT_USEC={fields.get('EXTEND_TIMEOUT_USEC')}, want 7500000 "
                            "(grace 2.5 s + 5 s margin)")
        rc = server.proc.wait(timeout=20)
        slow_thread.join(timeout=10)
        t_exit = time.monotonic()
        if rc != 0:
            problems.append(f"exit status {rc}")
        if slow.get("code") != grpc.StatusCode.UNAVAILABLE:
            problems.append(f"call outliving the grace ended {slow}, want UNAVAILABLE")
        if not 2.3 <= t_exit - t_term <= 6.0:
            problems.append(f"stopped {t_exit - t_term:.2f} s after SIGTERM with a 2.5 s grace")
        late_pings = notify.pings(t_stop)
        if late_pings:
            problems.append(f"{len(late_pings)} WATCHDOG=1 after STOPPING=1")
        extends = [(t, int(f["EXTEND_TIMEOUT_USEC"])) for t, f in notify.snapshot()
                   if "EXTEND_TIMEOUT_USEC" in f and t > t_stop]
        # At t_stop + ~1 s and ~2 s: the remaining grace plus the margin, falling; none
        # once the grace is over.
        if len(extends) != 2:
            problems.append(f"{len(extends)} EXTEND_TIMEOUT_USEC= after STOPPING=1, want 2 (every second "
                            f"of a 2.5 s grace): {[(round(t - t_stop, 2), v) for t, v in extends]}")
        for t, usec in extends:
            remaining = 2.5 - (t - t_stop)
            if not (remaining + 5.0 - 0.3) * 1e6 <= usec <= (remaining + 5.0 + 0.3) * 1e6:
                problems.append(f"EXTEND_TIMEOUT_USEC={usec} at {t - t_stop:.2f} s into the stop, want the "
                                f"remaining grace + 5 s = {(remaining + 5.0) * 1e6:.0f}")
            if t - t_stop > 2.5 + 0.2:
                problems.append(f"EXTEND_TIMEOUT_USEC= {t - t_stop:.2f} s into a 2.5 s grace")
        order = [k for _, f in notify.snapshot() for k in ("READY", "STOPPING") if k in f]
        if order != ["READY", "STOPPING"]:
            problems.append(f"READY/STOPPING order {order}")
        return problems
    finally:
        server.terminate()
        notify.close()


def blocked_shard_stops_the_watchdog():
    """A handler that blocks its shard for 2.5 s: WATCHDOG=1 stops for more than
    WATCHDOG_USEC (systemd would restart the service) and resumes once the shard turns
    again; the journal gets a "<4>" warning naming the shard and an "<6>" line on resume."""
    problems = []
    notify = NotifySocket()
    # stderr is the pipe this test reads: JOURNAL_STREAM names it, as systemd would.
    r, w = os.pipe()
    st = os.fstat(w)
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC), "URINGRPC_LOG": "info",
           "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    full_env = dict(os.environ)
    full_env.update(env)
    proc = subprocess.Popen([TEST_SERVER, "--shards", "2", "--port", "0", "--grace-ms", "0"], env=full_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=w, text=True)
    os.close(w)
    err_lines = []
    pump = threading.Thread(target=lambda: err_lines.extend(l.rstrip("\n") for l in os.fdopen(r)), daemon=True)
    pump.start()
    try:
        port = port_of(proc.stdout.readline())
        if not notify.wait_for("READY"):
            return ["no READY=1"]
        time.sleep(4 * PING_S)
        t_block = time.monotonic()
        result, t = call_in_thread(port, "/systemd.Test/BlockShard", b"2500")
        t.join(timeout=15)
        t_unblocked = result.get("ended", time.monotonic())
        if result.get("reply") != b"unblocked":
            problems.append(f"BlockShard ended {result}")
        time.sleep(5 * PING_S)
        pings = notify.pings(t_block - 3 * PING_S)
        if len(pings) < 4:
            return problems + [f"only {len(pings)} pings around the block"]
        longest = max(gaps(pings))
        # Blocked for 2.5 s: at most one ping can still come from the turn before the
        # block, so the silence lasts at least 2.5 s - 2 x the ping period.
        if longest < 2.5 - 2 * PING_S:
            problems.append(f"longest gap between pings {longest:.2f} s while a shard was blocked 2.5 s")
        if longest <= WATCHDOG_USEC / 1e6:
            problems.append(f"pings kept within WATCHDOG_USEC ({longest:.2f} s): systemd would not restart")
        after = notify.pings(t_unblocked)
        if len(after) < 2:
            problems.append(f"{len(after)} pings after the shard was unblocked: they did not resume")
        proc.send_signal(signal.SIGTERM)
        if proc.wait(timeout=20) != 0:
            problems.append(f"exit status {proc.returncode}")
        pump.join(timeout=5)
        warn = [l for l in err_lines if "systemd watchdog: shard" in l]
        if not warn or not warn[0].startswith("<4>uringrpc warn"):
            problems.append(f"no '<4>' watchdog warning in the journal: {err_lines}")
        resumed = [l for l in err_lines if "pings resume" in l]
        if not resumed or not resumed[0].startswith("<6>uringrpc info"):
            problems.append(f"no '<6>' resume line in the journal: {err_lines}")
        return problems
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()


def nothing_changes_outside_systemd():
    """Without NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS or JOURNAL_STREAM the server starts no
    notifier thread, logs nothing about systemd, prefixes no priority, and serves its port."""
    server = Server([TEST_SERVER, "--shards", "2", "--port", "0"], env={"URINGRPC_LOG": "debug"})
    try:
        line = server.wait_line("listening on ")
        if not line or not server.wait_line("ready"):
            return [f"server did not start: {server.stderr_lines()}"]
        problems = []
        if call(port_of(line), "/systemd.Test/Echo", b"hi") != b"hi":
            problems.append("Echo did not answer")
        task_dir = f"/proc/{server.proc.pid}/task"
        threads = []
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "comm")) as f:
                    threads.append(f.read().strip())
            except OSError:
                pass
        if "uringrpc/sd" in threads:
            problems.append(f"a notifier thread runs outside systemd: {threads}")
        if "uringrpc/0" not in threads:
            problems.append(f"shard threads not found by name: {threads}")
        rc = server.terminate()
        if rc != 0:
            problems.append(f"exit status {rc}")
        lines = server.stderr_lines()
        if any("systemd" in l for l in lines) or any(l.startswith("<") for l in lines):
            problems.append(f"systemd lines or priority prefixes outside systemd: {lines}")
        return problems
    finally:
        server.terminate()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def socket_activate(extra_args, server_args, trigger, attempts=5):
    """systemd-socket-activate on a free port: returns (Server, port, trigger's result)."""
    for _ in range(attempts):
        port = free_port()
        server = Server(["systemd-socket-activate", "-l", f"127.0.0.1:{port}"] + extra_args + server_args)
        if server.wait_line("Listening on", stream="err", timeout=5):
            return server, port, trigger(port)
        server.terminate()
    raise RuntimeError("systemd-socket-activate could not listen on a free port")


def socket_activation_serves_the_real_client():
    """systemd-socket-activate holds the socket and starts example-server on the first
    connection; the server adopts the socket (named by --fdname) and answers it."""
    if not shutil.which("systemd-socket-activate"):
        raise Skip()
    problems = []
    server, port, reply = socket_activate(
        ["--fdname=grpc"], [EXAMPLE_SERVER, "--shards", "2"],
        lambda port: call(port, "/helloworld.Greeter/SayHello", HELLO_YOU, timeout=10))
    try:
        if reply != b"\n\tHello you":
            problems.append(f"reply {reply!r}")
        line = server.wait_line("listening on ")
        if line != f"listening on {port} (systemd socket 'grpc')":
            problems.append(f"server printed {line!r}")
        if call(port, "/helloworld.Greeter/SayHello", HELLO_YOU) != b"\n\tHello you":
            problems.append("second call not answered")
        rc = server.terminate()
        if rc != 0:
            problems.append(f"exit status {rc} after SIGTERM: {server.stderr_lines()}")
        return problems
    finally:
        server.terminate()


def passed_datagram_socket_is_refused_by_name():
    """A datagram socket passed where a listening stream socket is needed: the server
    exits 1 with an error naming the socket and what is wrong."""
    if not shutil.which("systemd-socket-activate"):
        raise Skip()

    def poke(port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("127.0.0.1", port))

    server, port, _ = socket_activate(["--datagram", "--fdname=grpc"], [EXAMPLE_SERVER], poke)
    try:
        rc = server.proc.wait(timeout=10)
        time.sleep(0.2)
        err = " ".join(server.stderr_lines())
        problems = []
        if rc != 1:
            problems.append(f"exit status {rc}, want 1")
        if "systemd socket 'grpc' (fd 3)" not in err and "add_listen_fd(3)" not in err or "datagram" not in err:
            problems.append(f"error does not name the socket and 'datagram': {err!r}")
        return problems
    finally:
        server.terminate()


def restart_through_a_passed_socket_loses_no_call():
    """The test holds the listening socket, as systemd's .socket unit does. Generation 1
    serves it; under steady calls from two client threads it is SIGTERMed and exits, then
    generation 2 starts on the same socket. Calls made while no server ran wait in the
    listen backlog: every call is answered OK, some of them after generation 1 exited."""
    problems = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    stop = threading.Event()
    results = []  # (end time, ok, detail)
    lock = threading.Lock()

    def client():
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        say_hello = channel.unary_unary("/helloworld.Greeter/SayHello")
        while not stop.is_set():
            try:
                ok = say_hello(HELLO_YOU, timeout=15) == b"\n\tHello you"
                detail = "" if ok else "wrong reply"
            except grpc.RpcError as e:
                ok, detail = False, f"{e.code()}: {e.details()}"
            with lock:
                results.append((time.monotonic(), ok, detail))
        channel.close()

    gen1 = Server([EXAMPLE_SERVER, "--shards", "2", "--grace-ms", "3000"], pass_fd=fd)
    gen2 = None
    clients = []
    try:
        if not gen1.wait_line("listening on "):
            return [f"generation 1 did not start: {gen1.stderr_lines()}"]
        clients = [threading.Thread(target=client, daemon=True) for _ in range(2)]
        for c in clients:
            c.start()
        time.sleep(1.0)
        rc1 = gen1.terminate()
        t_gen1_gone = time.monotonic()
        if rc1 != 0:
            problems.append(f"generation 1 exit status {rc1}")
        time.sleep(0.5)  # no server at all: connections queue in the backlog
        gen2 = Server([EXAMPLE_SERVER, "--shards", "2", "--grace-ms", "3000"], pass_fd=fd)
        if not gen2.wait_line("listening on "):
            problems.append(f"generation 2 did not start: {gen2.stderr_lines()}")
        time.sleep(1.0)
        stop.set()
        for c in clients:
            c.join(timeout=20)
        rc2 = gen2.terminate()
        if rc2 != 0:
            problems.append(f"generation 2 exit status {rc2}")
        failed = [d for _, ok, d in results if not ok]
        after = [t for t, ok, _ in results if ok and t > t_gen1_gone]
        print(f"  {len(results)} calls, {len(failed)} failed, {len(after)} answered after generation 1 exited")
        if failed:
            problems.append(f"{len(failed)} of {len(results)} calls failed: {sorted(set(failed))[:3]}")
        if len(results) < 20:
            problems.append(f"only {len(results)} calls made")
        if not after:
            problems.append("no call answered after generation 1 exited")
        return problems
    finally:
        stop.set()
        for s in (gen1, gen2):
            if s:
                s.terminate()
        listener.close()


CASES = [
    ("sd_notify READY, STATUS, WATCHDOG, STOPPING, EXTEND_TIMEOUT_USEC", notify_life_cycle),
    ("a blocked shard stops the watchdog pings; journal priorities", blocked_shard_stops_the_watchdog),
    ("outside systemd: no notifier thread, no systemd log lines, no prefixes", nothing_changes_outside_systemd),
    ("systemd-socket-activate: real client answered through the passed socket", socket_activation_serves_the_real_client),
    ("a passed datagram socket is refused with an error naming it", passed_datagram_socket_is_refused_by_name),
    ("restart through one passed socket under load loses no call", restart_through_a_passed_socket_loses_no_call),
]


def main():
    report = Report()
    for binary in (TEST_SERVER, EXAMPLE_SERVER):
        if not os.path.exists(binary):
            print(f"FAIL: {binary} not built")
            report.record("binaries", False)
            return report.finish()
    for name, case in CASES:
        started = time.monotonic()
        try:
            problems = case()
        except Skip:
            print(f"SKIP: {name}")
            report.skip(name)
            continue
        except Exception as e:  # a case that crashes fails, and the others still run
            problems = [f"{type(e).__name__}: {e}"]
        for p in problems:
            print(f"FAIL: {name}: {p}")
        if not problems:
            print(f"PASS: {name} ({time.monotonic() - started:.1f} s)")
        report.record(name, not problems)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
