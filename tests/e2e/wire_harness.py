# Harness of the Python wire-level tests against seed-server (h2_conformance_test.py,
# grpc_edge_cases_test.py): starts tests/seed's seed-server, runs cases that speak HTTP/2 to it
# through tests/common/h2wire.py, judges the answers and reports through test_report.py.
# Run with Debian's /usr/bin/python3.
import os
import select
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from h2wire import ACK, CODE, GOAWAY, PING, RST_STREAM, Conn, grpc_fields, grpc_message  # noqa: E402
from test_report import Report, Skip  # noqa: E402

# The seed's unary method and its fixed request/response payloads (tests/seed/seed_service.h).
UNARY = "/test/SimpleUnaryUnary"
BLOCK_FOREVER = "/test/BlockForever"
BLOCK_BRIEFLY = "/test/BlockBriefly"  # sleeps 2 s, then answers
SEED_REQUEST = b"\x00\x00\x00"
SEED_RESPONSE = b"\x01\x01\x01"

# How long to wait for an answer that should come at once. Generous because the test
# machine is shared; a passing case returns as soon as its answer arrives.
WAIT = 2.0


def raw_conn(port):
    """A connection that grants no flow-control window unless the case sends a WINDOW_UPDATE:
    flow-control cases count the bytes the server may send."""
    return Conn(port, connect_timeout=WAIT, auto_window=False)


def unary_request(c, stream, path=UNARY, extra=(), payload=SEED_REQUEST, content_type="application/grpc"):
    """The seed's unary call on `stream`: headers through the HPACK encoder, one message."""
    c.headers(stream, grpc_fields(path, content_type, extra))
    c.data(stream, grpc_message(payload), end_stream=True)


class SeedServer:
    """seed-server on 127.0.0.1 with one shard, started and stopped by this test only."""

    def __init__(self):
        build = os.environ.get("BUILD", "build")
        binary = os.path.join(build, "bin", "seed-server")
        if not os.path.exists(binary):
            here = os.path.dirname(os.path.abspath(__file__))
            binary = os.path.join(here, "..", "..", build, "bin", "seed-server")
        self.proc = subprocess.Popen([binary, "--port", "0", "--shards", "1"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if not r:
                break
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("listening on "):
                self.port = int(line.split()[-1])
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"{binary} did not start")
        # "call METHOD" lines would fill the pipe and block a shard: drain them from here on.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for _ in self.proc.stdout:
            pass

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self):
        return self.proc.poll() is None


def seen_since(c, mark):
    text = " ".join(c.log[mark:]) or "no frame"
    if c.eof:
        text += " +closed"
    return text[:400]


def expect_conn_error(c, codes, close_ok=False, mark=0):
    """A connection error: GOAWAY with one of `codes`, then the connection closed. A bare
    close counts only where the RFC lets the GOAWAY be omitted (close_ok)."""
    codes = [CODE[x] for x in codes]
    deadline = time.monotonic() + WAIT
    goaway = None
    while True:
        f = c.read_frame(deadline)
        if f == "timeout":
            if goaway is not None:
                return False, seen_since(c, mark) + " (GOAWAY sent but connection left open)"
            return False, seen_since(c, mark) + " (no GOAWAY, connection open)"
        if f == "eof":
            if goaway is None:
                return close_ok, seen_since(c, mark)
            return goaway in codes, seen_since(c, mark)
        if f.type == GOAWAY and goaway is None:
            goaway = f.error_code
            if goaway not in codes:
                return False, seen_since(c, mark)


def expect_ping_ack(c, mark=0, opaque=b"pingpong"):
    """The connection is alive: our PING comes back acknowledged before anything fatal."""
    c.ping(opaque)
    deadline = time.monotonic() + WAIT
    while True:
        f = c.read_frame(deadline)
        if f in ("eof", "timeout"):
            return False, seen_since(c, mark)
        if f.type == GOAWAY:
            return False, seen_since(c, mark)
        if f.type == PING and f.flags & ACK and f.opaque_data == opaque:
            return True, seen_since(c, mark)


def expect_stream_error(c, stream, codes, conn_ok=False, mark=0):
    """A stream error: RST_STREAM on `stream` with one of `codes`, the connection still
    usable (a PING is answered). A GOAWAY with the code passes only where conn_ok says
    the RFC or nghttp2's own server treat this as a connection error."""
    codes = [CODE[x] for x in codes]
    deadline = time.monotonic() + WAIT
    while True:
        f = c.read_frame(deadline)
        if f in ("eof", "timeout"):
            return False, seen_since(c, mark)
        if f.type == GOAWAY:
            if not (conn_ok and f.error_code in codes):
                return False, seen_since(c, mark)
            # Escalated to a connection error: the connection must now close.
            while f not in ("eof", "timeout"):
                f = c.read_frame(deadline)
            return f == "eof", seen_since(c, mark) + ("" if f == "eof" else " (GOAWAY sent but connection left open)")
        if f.type == RST_STREAM and f.stream_id == stream:
            if f.error_code not in codes:
                return False, seen_since(c, mark)
            ok, _ = expect_ping_ack(c, mark)
            return ok, seen_since(c, mark) + ("" if ok else " (connection unusable after the stream error)")


def healthy(port):
    """A fresh connection is served: the seed's unary call answers OK with its payload."""
    c = raw_conn(port)
    try:
        c.handshake()
        unary_request(c, 1)
        r = c.read_response(1, limit=WAIT * 2)
        ok = r.trailer("grpc-status") == "0" and r.data == grpc_message(SEED_RESPONSE)
        return ok, r.describe()
    except (OSError, RuntimeError) as e:
        return False, f"health check: {e}"
    finally:
        c.close()


class Runner:
    """Runs cases, prints one line each; counts them in a test_report.Report. A case that
    raises test_report.Skip is counted as skipped."""

    def __init__(self, server):
        self.server = server
        self.report = Report()

    def run(self, case_id, desc, fn, check_health=True):
        try:
            ok, seen = fn(self.server.port)
        except Skip as e:
            print(f"{case_id:<12} SKIP  {desc} -- {e}", flush=True)
            self.report.skip(case_id)
            return
        except Exception as e:  # a crash in one case is that case's failure, not the suite's end
            ok, seen = False, f"test error: {type(e).__name__}: {e}"
        if check_health:
            if not self.server.alive():
                ok, seen = False, seen + " | SERVER PROCESS DIED"
            else:
                h_ok, h_seen = healthy(self.server.port)
                if not h_ok:
                    ok, seen = False, seen + f" | fresh connection not served: {h_seen}"
        verdict = "PASS" if ok else "FAIL"
        print(f"{case_id:<12} {verdict}  {desc} -- seen: {seen}", flush=True)
        self.report.record(case_id, ok)

    def finish(self):
        return self.report.finish()


def main_with(cases_fn):
    server = SeedServer()
    try:
        runner = Runner(server)
        cases_fn(runner)
        return runner.finish()
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit("wire_harness.py is a helper module; run the *_test.py files")
