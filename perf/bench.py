#!/usr/bin/python3
"""Side-by-side benchmark of uringrpc's bench-server against gRPC C++, grpc-go and gRPC Python
(issue 5). Each scenario runs every server in turn, server pinned to one core and load to the
other, interleaved over rounds; writes one Markdown table to perf/results/<date>-<host>.md.
Run by `make bench`; perf/README.md says how to read a result and rerun one scenario."""

import argparse
import asyncio
import datetime
import os
import re
import resource
import shlex
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import h2.config
import h2.connection
import h2.events

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVICE = "/grpc.testing.TestService/"
SATURATED = 0.90  # a server using less of its core than this was not the bottleneck


# ---- protobuf wire format, by hand: the handful of grpc.testing fields the scenarios use.
def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def len_field(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def varint_field(field, v):
    return varint(field << 3) + varint(v) if v else b""


def payload(size):  # grpc.testing.Payload { body }
    return len_field(2, b"x" * size) if size else b""


def simple_request(request_size, response_size):  # SimpleRequest
    msg = varint_field(2, response_size)
    if request_size:
        msg += len_field(3, payload(request_size))
    return msg


def streaming_output_request(count, size):  # StreamingOutputCallRequest
    return b"".join(len_field(2, varint_field(1, size)) for _ in range(count))


def streaming_input_request(size):  # StreamingInputCallRequest
    return len_field(1, payload(size))


def grpc_frame(msg, encoding=None):
    """One length-prefixed message; with an encoding, compressed and flagged as such."""
    if encoding:
        msg = compress(msg, encoding)
    return (b"\x01" if encoding else b"\x00") + len(msg).to_bytes(4, "big") + msg


def compress(data, encoding):
    # wbits 31: gzip container, 15: zlib (gRPC's "deflate"), as in RFC 1952 / 1950.
    c = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return c.compress(data) + c.flush()


def decompress(data, encoding):
    return zlib.decompress(data, 31 if encoding == "gzip" else 15)


def parse_fields(data):
    """Top-level (field, value) pairs of a protobuf message; raises on malformed input."""
    i, out = 0, []
    while i < len(data):
        key, i = read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 2:
            n, i = read_varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((field, value))
    if i != len(data):
        raise ValueError("truncated message")
    return out


def read_varint(data, i):
    v = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def body_size(msg):
    """Payload body length of a SimpleResponse / StreamingOutputCallResponse (field 1)."""
    for f, v in parse_fields(msg):
        if f == 1:
            return sum(len(b) for g, b in parse_fields(v) if g == 2)
    return 0


def split_grpc_messages(data, encoding=None):
    """The messages in DATA; a flagged one is inflated with `encoding`, which must be given."""
    msgs, i = [], 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 1:i + 5], "big")
        msg = data[i + 5:i + 5 + n]
        if data[i] & 1:
            if not encoding:
                raise ValueError("a compressed message without grpc-encoding")
            msg = decompress(msg, encoding)
        msgs.append(msg)
        i += 5 + n
    if i != len(data):
        raise ValueError("DATA does not end on a gRPC message boundary")
    return msgs


# ---- one real gRPC call over h2c or TLS with the h2 library: the check before each scenario.
def grpc_call(port, method, body, tls=False, timeout=10.0, encoding=None, path=None):
    """Sends `body` (already length-prefixed; with `encoding`, its messages compressed with it)
    to `path` (default: TestService's `method`) and returns (headers, trailers, messages,
    compressed, data_bytes): `compressed` counts the reply's messages that came flagged as
    compressed, `data_bytes` is the DATA as sent."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock = raw
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "POST"), (":scheme", "https" if tls else "http"),
                              (":path", path or SERVICE + method), (":authority", f"127.0.0.1:{port}"),
                              ("content-type", "application/grpc"), ("te", "trailers")]
                          + ([("grpc-encoding", encoding), ("grpc-accept-encoding", encoding)] if encoding else []))
        conn.send_data(1, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        headers, trailers, data, done = {}, {}, bytearray(), False
        deadline = time.monotonic() + timeout
        while not done:
            if time.monotonic() > deadline:
                raise TimeoutError("no end of stream")
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the end of the call")
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived):
                    headers = dict(ev.headers)
                elif isinstance(ev, h2.events.TrailersReceived):
                    trailers = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    done = True
                elif isinstance(ev, h2.events.StreamReset):
                    raise ConnectionError(f"stream reset, code {ev.error_code}")
            sock.sendall(conn.data_to_send())
        if not trailers and "grpc-status" in headers:
            trailers = headers  # trailers-only response
        flags, i = 0, 0
        while i + 5 <= len(data):
            flags += data[i] & 1
            i += 5 + int.from_bytes(data[i + 1:i + 5], "big")
        msgs = split_grpc_messages(bytes(data), headers.get("grpc-encoding"))
        return headers, trailers, msgs, flags, len(data)
    finally:
        sock.close()


# ---- scenarios
class Scenario:
    """kind: h2load (unary over h2c/TLS), fixed-rate, storm, stream-out, stream-in, idle."""

    def __init__(self, name, title, kind, method="EmptyCall", request=b"", conns=16, streams=10,
                 response_size=0, tls=False, size=1024, encoding=None):
        self.name, self.title, self.kind, self.method = name, title, kind, method
        self.request, self.conns, self.streams = request, conns, streams
        self.response_size, self.tls, self.size = response_size, tls, size
        # encoding: requests are sent compressed with it, replies are asked for with it (the
        # servers are started with it as their default response compression).
        self.encoding = encoding

    def unit(self):
        return {"stream-out": "MB/s", "stream-in": "MB/s", "storm": "conn/s",
                "idle": "KiB/conn"}.get(self.kind, "RPC/s")

    def per_op(self):
        return {"stream-out": "msg", "stream-in": "msg", "storm": "conn", "idle": "conn"}.get(self.kind, "RPC")


KIB = 1024
SCENARIOS = [
    Scenario("unary-empty-1x100", "EmptyCall, 1 connection × 100 streams", "h2load", conns=1, streams=100),
    Scenario("unary-empty-16x10", "EmptyCall, 16 connections × 10 streams", "h2load"),
    Scenario("unary-1k", "UnaryCall, 1 KiB request and 1 KiB response, 16 × 10", "h2load",
             method="UnaryCall", request=simple_request(KIB, KIB), response_size=KIB),
    Scenario("unary-64k", "UnaryCall, empty request, 64 KiB response, 16 × 10", "h2load",
             method="UnaryCall", request=simple_request(0, 64 * KIB), response_size=64 * KIB),
    Scenario("unary-64k-gzip", "UnaryCall, 64 KiB compressible request and response, both gzip, 16 × 10",
             "h2load", method="UnaryCall", request=simple_request(64 * KIB, 64 * KIB),
             response_size=64 * KIB, encoding="gzip"),
    Scenario("stream-out-1k", "StreamingOutputCall, 1 KiB messages, 4 streams on 1 connection",
             "stream-out", method="StreamingOutputCall", conns=1, streams=4),
    Scenario("stream-in-1k", "StreamingInputCall, 1 KiB messages, 4 streams on 1 connection",
             "stream-in", method="StreamingInputCall", conns=1, streams=4),
    Scenario("fixed-rate-50pct", "EmptyCall at 50% of gRPC C++'s unary-empty-16x10 peak, 16 × 10",
             "fixed-rate"),
    Scenario("conn-storm", "a new connection per EmptyCall, 128 connections in flight (storm-client)",
             "storm", conns=128, streams=1),
    Scenario("idle-1k", "1,000 idle h2c connections, one EmptyCall each, server RSS per connection",
             "idle", conns=1000, streams=1),
    Scenario("unary-tls", "EmptyCall over TLS 1.3 (ALPN h2), 16 × 10", "h2load", tls=True),
]


# ---- servers
# The servers that take `--compression NAME` (their default response compression).
COMPRESSING_SERVERS = ("ours", "ours-raw", "grpc-cpp", "grpc-cpp-callback")


def server_commands(build):
    py = "/usr/bin/python3"
    return {
        "ours": [os.path.join(build, "bin/bench-server")],
        # The same handlers registered by path, without the generated service class.
        "ours-raw": [os.path.join(build, "bin/bench-server"), "--api", "raw"],
        "grpc-cpp": [os.path.join(build, "perf/grpc-cpp-server")],
        "grpc-cpp-callback": [os.path.join(build, "perf/grpc-cpp-server"), "--api", "callback"],
        "grpc-go": [os.path.join(build, "perf/grpc-go-server")],
        "python": [py, os.path.join(HERE, "anchors/grpc_python_server.py")],
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    """utime + stime of every thread of the process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def core_busy_ticks(cpu):
    """Busy (non-idle, non-iowait) ticks of one CPU from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return sum(v[:8]) - v[3] - v[4]  # user..steal minus idle and iowait
    return 0


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """A server pinned to the server core; stopped by closing stdin, then SIGTERM, then SIGKILL."""

    def __init__(self, name, argv, core, log_dir, tls_files=None):
        self.name = name
        self.port = free_port()
        extra = ["--tls-cert", tls_files[0], "--tls-key", tls_files[1]] if tls_files else []
        self.argv = ["taskset", "-c", str(core)] + argv + ["--port", str(self.port)] + extra
        self.log_path = os.path.join(log_dir, f"{name}-{self.port}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=ROOT)
        self.pid = self.proc.pid  # taskset execs the server: same pid
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read_stdout, daemon=True)
        self.reader.start()

    def _read_stdout(self):
        # Keep draining stdout so a chatty server never blocks on a full pipe.
        for line in self.proc.stdout:
            m = re.search(rb"listening on (\d+)", line)
            if m and not self.ready.is_set():
                self.port = int(m.group(1))
                self.ready.set()

    def wait_ready(self, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ready.wait(0.1):
                return True
            if self.proc.poll() is not None:
                return False
        return False

    def tail(self, n=5):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            lines = f.read().strip().splitlines()
        # A crash prints its reason first and a long stack after it: show the reason.
        first = next((x for x in lines if re.search(r"panic|error|fatal|abort", x, re.I)), None)
        return " | ".join(([first] if first else []) + [x for x in lines[-n:] if x != first])

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=8)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


# ---- measurement helpers
class Window:
    """Server CPU, load-generator CPU and other load on the server core over one measured window."""

    def __init__(self, pid, server_core, load_core=None):
        self.pid, self.core, self.lcore = pid, server_core, load_core

    def __enter__(self):
        self.t0 = time.monotonic()
        self.s0 = cpu_ticks(self.pid)
        self.c0 = core_busy_ticks(self.core)
        self.lc0 = core_busy_ticks(self.lcore) if self.lcore is not None else 0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.l0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.server_s = (cpu_ticks(self.pid) - self.s0) / CLK_TCK
        other = (core_busy_ticks(self.core) - self.c0) / CLK_TCK - self.server_s
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.load_s = ru.ru_utime + ru.ru_stime - self.l0
        self.server_util = self.server_s / self.wall
        self.other_util = max(0.0, other / self.wall)
        self.load_util = self.load_s / self.wall
        # Other processes on the load core slow the client: a server-bound row needs it free.
        self.load_other_util = None
        if self.lcore is not None:
            lbusy = (core_busy_ticks(self.lcore) - self.lc0) / CLK_TCK
            self.load_other_util = max(0.0, (lbusy - self.load_s) / self.wall)
        return False


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latencies_from_log(path):
    """h2load --log-file rows: start µs, HTTP status (-1 failed), duration µs."""
    ok, bad = [], 0
    with open(path) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            if parts[1] == "200":
                ok.append(int(parts[2]))
            else:
                bad += 1
    ok.sort()
    return ok, bad


def parse_h2load(out):
    r = {}
    m = re.search(r"finished in ([\d.]+)(ms|s|us)", out)
    if m:
        r["seconds"] = float(m.group(1)) / {"s": 1, "ms": 1e3, "us": 1e6}[m.group(2)]
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    if m:
        r["done"], r["succeeded"], r["failed"], r["errored"] = (int(m.group(i)) for i in (3, 4, 5, 6))
    m = re.search(r"traffic: .*?, [\d.]+\w*B \((\d+)\) data", out)
    if m:
        r["data_bytes"] = int(m.group(1))
    return r


class Run:
    """Figures of one server in one round of one scenario."""

    def __init__(self):
        self.value = None       # the scenario's figure (RPC/s, MB/s, conn/s, KiB/conn)
        self.cpu_us = None      # server CPU µs per RPC / message / connection
        self.lat = None         # (p50, p99, p99.9) in µs
        self.server_util = self.load_util = self.other_util = None
        self.notes = []
        self.command = ""


class Bench:
    def __init__(self, args):
        self.a = args
        self.scratch = tempfile.mkdtemp(prefix="uringrpc-bench-")
        self.commands = {}      # (scenario, server) -> exact command of the last measured run
        self.results = {}       # (scenario, server) -> [Run]
        self.skipped = {}       # (scenario, server) -> reason
        self.fixed_rate_note = ""
        self.tls_files = None
        self.bodies = {}

    def log(self, *parts):
        print(*parts, flush=True)

    def body_file(self, sc, msgs=None):
        """Request body (length-prefixed gRPC messages) for h2load -d."""
        data = b"".join(grpc_frame(m, sc.encoding) for m in (msgs if msgs is not None else [sc.request]))
        path = os.path.join(self.scratch, f"{sc.name}.body")
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def ensure_tls(self):
        if self.tls_files:
            return self.tls_files
        cert, key = os.path.join(self.scratch, "cert.pem"), os.path.join(self.scratch, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=30)
        self.tls_files = (cert, key)
        return self.tls_files

    # -- the check before each scenario: one real call, grpc-status 0, right reply
    def check(self, sc, srv):
        """Returns the DATA bytes of one correct reply, or raises with what was wrong."""
        if sc.kind == "stream-out":
            body = grpc_frame(streaming_output_request(3, sc.size))
            want = [sc.size] * 3
        elif sc.kind == "stream-in":
            body = grpc_frame(streaming_input_request(sc.size)) * 3
            want = None
        else:
            body = grpc_frame(sc.request, sc.encoding)
            want = [sc.response_size] if sc.method == "UnaryCall" else [0]
        headers, trailers, msgs, compressed, data_bytes = grpc_call(srv.port, sc.method, body, tls=sc.tls,
                                                        encoding=sc.encoding)
        if sc.encoding and (headers.get("grpc-encoding") != sc.encoding or compressed != len(msgs)):
            raise RuntimeError(f"reply not {sc.encoding}-compressed (grpc-encoding "
                               f"{headers.get('grpc-encoding')}, {compressed} of {len(msgs)} messages flagged)")
        if headers.get(":status") != "200":
            raise RuntimeError(f"HTTP status {headers.get(':status')}")
        if trailers.get("grpc-status") != "0":
            raise RuntimeError(f"grpc-status {trailers.get('grpc-status')} {trailers.get('grpc-message', '')}")
        if sc.kind == "stream-in":
            agg = dict(parse_fields(msgs[0])).get(1, 0) if len(msgs) == 1 else None
            if agg != 3 * sc.size:
                raise RuntimeError(f"aggregated_payload_size {agg}, want {3 * sc.size}")
        elif sc.method == "EmptyCall":
            if [len(m) for m in msgs] != [0]:
                raise RuntimeError(f"reply message sizes {[len(m) for m in msgs]}, want [0]")
        elif [body_size(m) for m in msgs] != want:
            raise RuntimeError(f"reply payload sizes {[body_size(m) for m in msgs][:5]}, want {want[:5]}")
        return data_bytes

    # -- runners per kind; each returns a Run
    def h2load_argv(self, sc, port, body_path, seconds, log_path=None, rps=None, requests=None):
        scheme = "https" if sc.tls else "http"
        argv = ["taskset", "-c", str(self.a.load_core), "h2load", "-t", "1", "-c", str(sc.conns),
                "-m", str(sc.streams), "-H", "content-type: application/grpc", "-H", "te: trailers",
                "-d", body_path]
        if sc.encoding:
            argv += ["-H", f"grpc-encoding: {sc.encoding}", "-H", f"grpc-accept-encoding: {sc.encoding}"]
        argv += ["-n", str(requests)] if requests else ["-D", f"{round(seconds * 1000)}ms"]
        if rps:
            argv += ["--rps", f"{rps:g}"]
        if log_path:
            argv += ["--log-file", log_path]
        return argv + [f"{scheme}://127.0.0.1:{port}{SERVICE}{sc.method}"]

    def run_h2load(self, argv, timeout):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"h2load exited {p.returncode}: {p.stderr.strip()[-300:]}")
        return parse_h2load(p.stdout)

    def measure_h2load(self, sc, srv, reply_bytes, rps=None):
        body_path, _ = self.body_file(sc)
        warm = self.h2load_argv(sc, srv.port, body_path, self.a.warmup)
        self.run_h2load(warm, self.a.warmup + 30)
        log_path = os.path.join(self.scratch, "h2load.log")
        argv = self.h2load_argv(sc, srv.port, body_path, self.a.seconds, log_path, rps=rps)
        run = Run()
        run.command = shlex.join(argv)
        with Window(srv.pid, self.a.server_core) as w:
            r = self.run_h2load(argv, self.a.seconds + 60)
        lat, bad = latencies_from_log(log_path)
        os.unlink(log_path)
        n = r.get("succeeded", 0)
        if not n:
            raise RuntimeError("h2load: no request succeeded")
        run.value = n / r["seconds"]
        run.cpu_us = w.server_s * 1e6 / n
        run.lat = (percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9))
        run.server_util, run.load_util, run.other_util = w.server_util, w.load_util, w.other_util
        if r.get("failed") or r.get("errored") or bad:
            run.notes.append(f"{r.get('failed', 0)} failed, {r.get('errored', 0)} errored")
        # h2load does not read grpc-status; a server answering with errors would send less
        # DATA per reply than the check call did, so compare DATA bytes per reply.
        per_reply = r.get("data_bytes", 0) / n
        if abs(per_reply - reply_bytes) > 0.02 * reply_bytes + 1:
            run.notes.append(f"DATA {per_reply:.0f} B/reply, check call had {reply_bytes} B")
        return run

    def client_line(self, argv, timeout):
        """Runs a perf/clients program and returns its key=value line as a dict."""
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
        return p, line, kv

    @staticmethod
    def note_load_core(run, w):
        if w.load_other_util is not None and w.load_other_util >= 0.2:
            run.notes.append(f"load core shared ({pct(w.load_other_util)} other processes)")

    def measure_storm(self, sc, srv, reply_bytes):
        # storm-client: C connections in flight, each one EmptyCall (checked: :status 200, one
        # empty message, grpc-status 0) and a close; see perf/clients/storm_client.cc.
        client = os.path.join(self.a.build, "perf/storm-client")

        def argv(seconds):
            return ["taskset", "-c", str(self.a.load_core), client, "--port", str(srv.port),
                    "--conns", str(sc.conns), "--seconds", f"{seconds:g}"]

        self.client_line(argv(self.a.warmup), self.a.warmup + 30)
        cmd = argv(self.a.seconds)
        run = Run()
        run.command = shlex.join(cmd)
        with Window(srv.pid, self.a.server_core, self.a.load_core) as w:
            p, line, kv = self.client_line(cmd, self.a.seconds + 60)
        self.note_load_core(run, w)
        total = int(kv.get("completed", 0))
        if not total:
            raise RuntimeError(f"storm-client: no connection completed its call: {line} {p.stderr.strip()[-300:]}")
        run.value = float(kv["conn_per_s"])
        run.cpu_us = w.server_s * 1e6 / total
        run.lat = (float(kv["p50_us"]), float(kv["p99_us"]), float(kv["p999_us"]))
        run.server_util, run.other_util = w.server_util, w.other_util
        run.load_util = float(kv["client_cpu_s"]) / float(kv["seconds"])
        if int(kv.get("failures", 0)):
            run.notes.append(f"{kv['failures']} connections failed ({kv.get('failure_kinds')})")
        if int(kv.get("goaways", 0)):
            run.notes.append(f"{kv['goaways']} GOAWAYs")
        return run

    def measure_stream(self, sc, srv):
        # h2-stream-client (nghttp2 client session) by default; --stream-client grpc runs the
        # gRPC C++ client instead, as a cross-check. Both print the same key=value line.
        mode = "out" if sc.kind == "stream-out" else "in"

        def argv(seconds):
            if self.a.stream_client == "grpc":
                head = [os.path.join(self.a.build, "perf/stream-client"), "--target", f"127.0.0.1:{srv.port}"]
            else:
                head = [os.path.join(self.a.build, "perf/h2-stream-client"), "--port", str(srv.port)]
            return ["taskset", "-c", str(self.a.load_core)] + head + [
                "--mode", mode, "--seconds", f"{seconds:g}", "--size", str(sc.size),
                "--streams", str(sc.streams), "--batch", "1000"]

        self.client_line(argv(self.a.warmup), self.a.warmup + 30)
        cmd = argv(self.a.seconds)
        run = Run()
        run.command = shlex.join(cmd)
        with Window(srv.pid, self.a.server_core, self.a.load_core) as w:
            p, line, kv = self.client_line(cmd, self.a.seconds + 60)
        self.note_load_core(run, w)
        if p.returncode != 0 or not kv:
            raise RuntimeError(f"{os.path.basename(cmd[3])} exited {p.returncode}: {line} {p.stderr.strip()[-300:]}")
        msgs = int(kv["messages"])
        run.value = float(kv["mb_per_s"])
        run.cpu_us = w.server_s * 1e6 / msgs
        run.server_util, run.other_util = w.server_util, w.other_util
        run.load_util = float(kv["client_cpu_s"]) / float(kv["seconds"])
        run.notes.append(f"{float(kv['msgs_per_s']) / 1e3:.1f}k msg/s")
        return run

    def measure_idle(self, sc, srv):
        run = Run()
        run.command = (f"(bench.py, in-process) {sc.conns} h2c connections to 127.0.0.1:{srv.port}, "
                       "one EmptyCall each, then idle; VmRSS of the server from /proc/PID/status")
        body = grpc_frame(b"")
        # Warm the server with a few short connections so one-time allocations are in the baseline.
        asyncio.run(idle_connections(srv.port, 8, body, hold=0))
        time.sleep(0.5)
        before = vm_rss_kib(srv.pid)
        holder = {}

        def measure():
            time.sleep(1.0)  # let the server settle after the last handshake
            holder["after"] = vm_rss_kib(srv.pid)

        with Window(srv.pid, self.a.server_core) as w:
            opened, alive = asyncio.run(idle_connections(srv.port, sc.conns, body, hold=1, on_idle=measure))
        if opened < sc.conns:
            run.notes.append(f"only {opened} of {sc.conns} connections completed their call")
        if alive < opened:
            run.notes.append(f"only {alive} of {opened} still answered a call after the measurement")
        run.value = (holder["after"] - before) / max(1, opened)
        run.cpu_us = w.server_s * 1e6 / max(1, opened)
        run.server_util, run.other_util = w.server_util, w.other_util
        run.notes.append(f"RSS {before / 1024:.1f} → {holder['after'] / 1024:.1f} MiB")
        return run

    # -- one server, one round of one scenario
    def run_one(self, sc, name, argv, rnd):
        tls = self.ensure_tls() if sc.tls else None
        srv = ServerProcess(name, argv, self.a.server_core, self.scratch, tls)
        try:
            if not srv.wait_ready():
                why = "exits before listening" + (" with --tls-cert/--tls-key (no TLS support?)" if tls else "")
                raise RuntimeError(f"{why}: {srv.tail()}")
            reply_bytes = self.check(sc, srv)
            if sc.kind in ("h2load",):
                run = self.measure_h2load(sc, srv, reply_bytes)
            elif sc.kind == "fixed-rate":
                rate = self.fixed_rate()
                run = self.measure_h2load(sc, srv, reply_bytes, rps=rate / sc.conns)
            elif sc.kind == "storm":
                run = self.measure_storm(sc, srv, reply_bytes)
            elif sc.kind in ("stream-out", "stream-in"):
                run = self.measure_stream(sc, srv)
            else:
                run = self.measure_idle(sc, srv)
            if srv.proc.poll() is not None:
                run.notes.append(f"server exited during the run: {srv.tail()}")
            return run
        except Exception as e:
            time.sleep(0.2)
            if srv.proc.poll() is not None and "exits before listening" not in str(e):
                raise RuntimeError(f"{e}; server exited {srv.proc.returncode}: {srv.tail(3)}") from e
            raise
        finally:
            srv.stop()

    def fixed_rate(self):
        if self.a.fixed_rate:
            self.fixed_rate_note = f"offered load {self.a.fixed_rate:.0f} RPC/s given by --fixed-rate"
            return self.a.fixed_rate
        runs = self.results.get(("unary-empty-16x10", "grpc-cpp"))
        vals = [r.value for r in runs or [] if r.value]
        if vals:
            peak = statistics.median(vals)
            self.fixed_rate_note = (f"offered load {0.5 * peak:.0f} RPC/s = 50% of gRPC C++'s "
                                    f"unary-empty-16x10 median ({peak:.0f} RPC/s) in this run")
            return 0.5 * peak
        self.fixed_rate_note = ("offered load 32500 RPC/s = 50% of the issue's 65k/s for gRPC C++ "
                                "16×10 (gRPC C++ 16×10 not measured in this run)")
        return 32500.0

    def client_for(self, sc):
        """The perf/clients program a scenario needs, or None for h2load and bench.py itself."""
        if sc.kind == "storm":
            return "storm-client"
        if sc.kind.startswith("stream"):
            return "stream-client" if self.a.stream_client == "grpc" else "h2-stream-client"
        return None

    def run(self, scenarios, servers):
        cmds = server_commands(self.a.build)
        cmds.update(self.a.extra_server)
        for sc in scenarios:
            self.log(f"== {sc.name}: {sc.title}")
            for rnd in range(self.a.rounds):
                for name in servers:
                    key = (sc.name, name)
                    if key in self.skipped:
                        continue
                    argv = cmds.get(name)
                    if argv and sc.encoding:
                        if name not in COMPRESSING_SERVERS:
                            self.skipped[key] = "no --compression flag in this anchor"
                            self.log(f"   {name}: skipped, {self.skipped[key]}")
                            continue
                        argv = argv + ["--compression", sc.encoding]
                    missing = [x for x in argv or [] if x.startswith("/") and not os.path.exists(x)]
                    if argv is None or missing:
                        self.skipped[key] = f"not built ({missing[0] if missing else 'no such server'})"
                        self.log(f"   {name}: skipped, {self.skipped[key]}")
                        continue
                    client = self.client_for(sc)
                    if client and not os.path.exists(os.path.join(self.a.build, "perf", client)):
                        self.skipped[key] = f"{client} not built (make bench-clients)"
                        continue
                    try:
                        run = self.run_one(sc, name, argv, rnd)
                    except Exception as e:  # one server failing must not end the whole run
                        msg = f"{type(e).__name__}: {e}"
                        self.log(f"   round {rnd + 1} {name}: FAILED {msg}")
                        if sc.tls and "TLS" in msg:
                            self.skipped[key] = "server has no --tls-cert/--tls-key"
                        self.results.setdefault(key, []).append(Run())
                        self.results[key][-1].notes.append(f"failed: {msg[:200]}")
                        continue
                    self.results.setdefault(key, []).append(run)
                    self.commands[key] = run.command
                    self.log(f"   round {rnd + 1} {name}: {fmt_value(run.value, sc)} {sc.unit()}, "
                             f"{fmt_num(run.cpu_us)} µs/{sc.per_op()}, server core {pct(run.server_util)}, "
                             f"load core {pct(run.load_util)}, other load {pct(run.other_util)}"
                             + (f"; {'; '.join(run.notes)}" if run.notes else ""))
                    self.log(f"      $ {run.command}")


# ---- idle connections (asyncio + h2, on the load core since bench.py pins itself there)
async def one_idle(port, body, ready, release, stream_ids=(1, 3)):
    """Opens a connection, makes one EmptyCall, waits for `release`, then makes another."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 20)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    results = []
    try:
        for i, sid in enumerate(stream_ids):
            if i == 1:
                ready.set_result(True) if not ready.done() else None
                await release.wait()
            conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", SERVICE + "EmptyCall"),
                                    (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                                    ("te", "trailers")])
            conn.send_data(sid, body, end_stream=True)
            writer.write(conn.data_to_send())
            status = None
            done = False
            while not done:
                chunk = await asyncio.wait_for(reader.read(65536), 20)
                if not chunk:
                    raise ConnectionError("closed")
                for ev in conn.receive_data(chunk):
                    if isinstance(ev, (h2.events.TrailersReceived, h2.events.ResponseReceived)):
                        status = dict(ev.headers).get("grpc-status", status)
                    elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                        done = True
                    elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                        raise ConnectionError("reset")
                writer.write(conn.data_to_send())
            results.append(status == "0")
    finally:
        if not ready.done():
            ready.set_result(False)
        writer.close()
    return results


async def idle_connections(port, count, body, hold, on_idle=None):
    """Returns (connections whose first call succeeded, connections whose second call succeeded)."""
    release = asyncio.Event()
    readies = [asyncio.get_running_loop().create_future() for _ in range(count)]
    tasks = []
    sem = asyncio.Semaphore(64)  # connect in waves: no listen-backlog overflow

    async def guarded(i):
        async with sem:
            t = asyncio.ensure_future(one_idle(port, body, readies[i], release))
            await asyncio.wait([t, readies[i]], return_when=asyncio.FIRST_COMPLETED)
            return t

    tasks = await asyncio.gather(*(guarded(i) for i in range(count)))
    opened = sum(1 for f in readies if f.done() and f.result())
    if hold and on_idle:
        await asyncio.get_running_loop().run_in_executor(None, on_idle)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    alive = sum(1 for r in results if isinstance(r, list) and len(r) == 2 and all(r))
    return opened, alive


# ---- report
def fmt_num(v, digits=3):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_value(v, sc):
    if v is None:
        return "–"
    if sc.unit() == "RPC/s" or sc.unit() == "conn/s":
        return f"{v / 1e3:.1f}k"
    return f"{v:.1f}"


def pct(u):
    return "–" if u is None else f"{100 * u:.0f}%"


def ms(us):
    return "–" if us is None else f"{us / 1e3:.2f}"


def median_of(runs, attr):
    vals = [getattr(r, attr) for r in runs if getattr(r, attr) is not None]
    return statistics.median(vals) if vals else None


def source_state():
    """The commit measured, and which build inputs differ from it (servers built from a dirty tree)."""
    def git(*args):
        p = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True, timeout=10)
        return p.stdout.rstrip("\n")
    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "src", "include", "perf", "Makefile").splitlines()]
    if not dirty:
        return f"commit {head}"
    shown = ", ".join(dirty[:6]) + (f" and {len(dirty) - 6} more" if len(dirty) > 6 else "")
    return f"commit {head} plus uncommitted changes to {shown}"


def machine_info():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    h2v = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    grpcv = subprocess.run(["pkg-config", "--modversion", "grpc++"], capture_output=True, text=True).stdout.strip()
    return (f"{model}, {os.cpu_count()} CPUs, {mem} RAM; Linux {os.uname().release}; "
            f"source {source_state()}; "
            f"{h2v}; gRPC C++ {grpcv or '?'}; load average at start {open('/proc/loadavg').read().split()[:3]}")


def report(bench, scenarios, servers, argv, started, machine):
    a = bench.a
    lines = []
    kind = "quick smoke run (--quick): short windows, numbers are indicative only" if a.quick else "full run"
    lines += [f"# Benchmark run {started:%Y-%m-%d %H:%M} on {socket.gethostname()}", "",
              f"- Kind: {kind}.",
              f"- Machine: {machine}.",
              f"- Load average at end: {open('/proc/loadavg').read().split()[:3]}. Other engineers build on this "
              "machine: the \"other load\" column is the CPU time of other processes on the server's core "
              "during the window, and any figure next to a high value is noisy.",
              f"- Command: `{shlex.join(argv)}`",
              f"- Fairness: server pinned to CPU {a.server_core} and load to CPU {a.load_core} (taskset); "
              f"each scenario runs every server in turn, {a.rounds} rounds of {a.seconds:g} s after a "
              f"{a.warmup:g} s warm-up, a fresh server process per run; median (min–max) over rounds.",
              "- Server CPU is utime+stime of all its threads from /proc/PID/stat over the measured window, "
              "divided by the completed RPCs (messages for streaming, connections for the storm). Latencies "
              "from h2load's per-request log; for conn-storm, storm-client's connect-to-trailers times.",
              f"- Core saturated? = the server used ≥ {SATURATED:.0%} of its core; \"no\" means the load "
              "generator or the scenario, not the server, set the pace.", ""]
    if bench.fixed_rate_note:
        lines += [f"- fixed-rate-50pct: {bench.fixed_rate_note}.", ""]
    built = []
    for name in servers:
        exe = next((x for x in server_commands(a.build).get(name, []) if x.startswith("/") and "python3" not in x), None)
        if exe and os.path.exists(exe):
            built.append(f"{name} {datetime.datetime.fromtimestamp(os.path.getmtime(exe)):%Y-%m-%d %H:%M}")
    if built:
        lines += [f"- Server binaries last built (the source line above is the tree at run time): {', '.join(built)}.", ""]
    lines += ["| scenario | server | throughput: median (min–max) | server CPU µs/op | p50 / p99 ms "
              "| vs gRPC C++ | core saturated? | other load | notes |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for sc in scenarios:
        base = bench.results.get((sc.name, "grpc-cpp"), [])
        base_val, base_cpu = median_of(base, "value"), median_of(base, "cpu_us")
        base_p99 = statistics.median([r.lat[1] for r in base if r.lat and r.lat[1]] or [0]) or None
        for name in servers:
            key = (sc.name, name)
            runs = [r for r in bench.results.get(key, []) if r.value is not None]
            notes = []
            failed = [n for r in bench.results.get(key, []) for n in r.notes if n.startswith("failed")]
            if failed:  # the same failure every round: say it once, short
                notes.append(f"{len(failed)} of {len(bench.results[key])} rounds {failed[0][:160]}")
            shared = [r for r in bench.results.get(key, []) if any(n.startswith("load core shared") for n in r.notes)]
            if shared:  # the client lost its core to other processes: one short note for all rounds
                notes.append(f"load core shared with other processes in {len(shared)} of "
                             f"{len(bench.results[key])} rounds")
            for r in bench.results.get(key, []):
                for n in r.notes:
                    if not (n.startswith("failed") or n.endswith("msg/s") or n in notes
                            or n.startswith("load core shared")
                            or (n.startswith("RSS") and any(x.startswith("RSS") for x in notes))):
                        notes.append(n)
            if not runs:
                why = bench.skipped.get(key) or "; ".join(notes) or "not run"
                lines.append(f"| {sc.name} | {name} | – | – | – | – | – | – | {why} |")
                continue
            vals = [r.value for r in runs]
            med = statistics.median(vals)
            thr = f"{fmt_value(med, sc)} ({fmt_value(min(vals), sc)}–{fmt_value(max(vals), sc)}) {sc.unit()}"
            cpu = median_of(runs, "cpu_us")
            lat = [r.lat for r in runs if r.lat and r.lat[0] is not None]
            if lat:
                p = [statistics.median(x[i] for x in lat) for i in range(3)]
                lat_s = f"{ms(p[0])} / {ms(p[1])}" + (f" / p99.9 {ms(p[2])}" if sc.kind == "fixed-rate" else "")
            else:
                lat_s = "–"
            ratio = "–"
            if name != "grpc-cpp" and base_val:
                if sc.kind == "idle":
                    ratio = f"{med / base_val:.2f}× RSS"
                elif sc.kind == "fixed-rate" and base_p99 and lat:
                    ratio = f"{p[1] / base_p99:.2f}× p99, {cpu / base_cpu:.2f}× CPU"
                else:
                    ratio = f"{med / base_val:.2f}× {sc.unit()}, {cpu / base_cpu:.2f}× CPU"
            util = median_of(runs, "server_util")
            other = median_of(runs, "other_util") or 0.0
            if sc.kind == "idle":
                sat = "–"
            elif util >= SATURATED:
                sat = f"yes ({pct(util)})"
            elif util + other >= SATURATED:
                sat = f"**no** ({pct(util)}; core shared with other processes)"
            else:
                sat = f"**no** ({pct(util)})"
            load = median_of(runs, "load_util")
            if sc.kind != "idle" and load is not None and load >= SATURATED and util < SATURATED:
                notes.append(f"load core busy ({pct(load)}): load-bound")
            median_run = sorted(runs, key=lambda r: r.value)[len(runs) // 2]
            notes += [f"median round {n}" for n in median_run.notes if n.endswith("msg/s")]
            lines.append(f"| {sc.name} | {name} | {thr} | {fmt_num(cpu)} | {lat_s} | {ratio} | {sat} | "
                         f"{pct(median_of(runs, 'other_util'))} | {'; '.join(notes)} |")
    lines += ["", "## Scenarios", ""]
    for sc in scenarios:
        lines.append(f"- **{sc.name}**: {sc.title}.")
    lines += ["", "## Exact commands (last round of each; ports differ per run)", "",
              "Servers are started as `taskset -c SERVER_CORE <server> --port N` (plus `--tls-cert F --tls-key F` "
              "for unary-tls, `--compression gzip` for unary-64k-gzip), each checked with one real gRPC call (grpc-status 0, right reply size) before it "
              "is measured. `-d FILE` is the scenario's request body (length-prefixed protobuf): "
              "`/usr/bin/python3 perf/bench.py --write-bodies DIR` writes them all.", "", "```"]
    for sc in scenarios:
        for name in servers:
            if (sc.name, name) in bench.commands:
                lines.append(f"# {sc.name} / {name}")
                lines.append(bench.commands[(sc.name, name)])
    lines += ["```", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory holding bin/ and perf/ (default: build)")
    ap.add_argument("--servers", default="ours,grpc-cpp,grpc-go,python",
                    help="comma list from: ours, grpc-cpp, grpc-cpp-callback, grpc-go, python, or --extra-server names")
    ap.add_argument("--scenarios", default="all", help="comma list of scenario names, or all (see --list)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    ap.add_argument("--warmup", type=float, default=2.0, help="warm-up before each measured window")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds of 1 s, 0.3 s warm-up")
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    ap.add_argument("--fixed-rate", type=float, default=0, help="RPC/s for fixed-rate-50pct (default: 50%% of "
                    "gRPC C++'s unary-empty-16x10 median in this run)")
    ap.add_argument("--extra-server", action="append", default=[], metavar="NAME=COMMAND",
                    help="another server to compare, started as COMMAND --port N")
    ap.add_argument("--stream-client", choices=("h2", "grpc"), default="h2",
                    help="load of stream-out-1k/stream-in-1k: h2 = h2-stream-client (nghttp2, default), "
                    "grpc = stream-client (the gRPC C++ client; slower than our server, a cross-check)")
    ap.add_argument("--out", help="result file (default perf/results/<date>-<host>.md)")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("--write-bodies", metavar="DIR", help="write each h2load scenario's request body "
                    "(the -d file of the commands in a result) to DIR/<scenario>.body and exit")
    a = ap.parse_args()
    if a.list:
        for sc in SCENARIOS:
            print(f"{sc.name:20} {sc.title}")
        return 0
    if a.write_bodies:
        os.makedirs(a.write_bodies, exist_ok=True)
        for sc in SCENARIOS:
            if sc.kind in ("h2load", "fixed-rate"):
                with open(os.path.join(a.write_bodies, f"{sc.name}.body"), "wb") as f:
                    f.write(grpc_frame(sc.request, sc.encoding))
                print(os.path.join(a.write_bodies, f"{sc.name}.body"))
        return 0
    if a.quick:
        a.seconds, a.warmup = 1.0, 0.3
    a.build = os.path.abspath(os.path.join(ROOT, a.build))
    a.extra_server = {k: shlex.split(v) for k, v in (x.split("=", 1) for x in a.extra_server)}
    names = [s.name for s in SCENARIOS]
    wanted = names if a.scenarios == "all" else a.scenarios.split(",")
    unknown = [s for s in wanted if s not in names]
    if unknown:
        ap.error(f"unknown scenarios {unknown}; known: {names}")
    scenarios = [s for s in SCENARIOS if s.name in wanted]
    servers = a.servers.split(",")

    # bench.py's own work (checks, idle connections, log parsing) belongs on the load core.
    os.sched_setaffinity(0, {a.load_core})
    # 1,000 idle connections need more descriptors than the usual soft limit of 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    started = datetime.datetime.now()
    machine = machine_info()
    argv = ["/usr/bin/python3", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]
    print(f"machine: {machine}\ncommand: {shlex.join(argv)}", flush=True)
    bench = Bench(a)
    bench.run(scenarios, servers)
    text = report(bench, scenarios, servers, argv, started, machine)
    out = a.out
    if not out:
        base = os.path.join(HERE, "results", f"{started:%Y-%m-%d}-{socket.gethostname()}")
        out, i = base + ".md", 2
        while os.path.exists(out):
            out, i = f"{base}-{i}.md", i + 1
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print("\n" + text)
    print(f"written to {os.path.relpath(out, ROOT)}; server logs in {bench.scratch}")
    measured = any(r.value is not None for runs in bench.results.values() for r in runs)
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
