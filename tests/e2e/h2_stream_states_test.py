# RFC 9113 stream states, stream limits and closed streams, each rule checked on both
# request paths: a gRPC request, and a request that is not gRPC (GET /, answered with a
# complete 405), the latter also with the client's window at 0 (the answer then cannot
# finish and the stream stays open). Every rule is also put to nghttpd, nghttp2's own
# server (Debian's nghttp2-server, started on loopback by this test), and our answer
# must be at least as strict as its: ignored < stream error < connection error.
# Run: BUILD=build /usr/bin/python3 tests/e2e/h2_stream_states_test.py
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_harness import BLOCK_FOREVER, SEED_REQUEST, UNARY, WAIT, main_with  # noqa: E402  (and tests/common)
from h2wire import (  # noqa: E402
    ACK, CODE, ERRORS, GOAWAY, INITIAL_WINDOW_SIZE, PING, PRIORITY, RST_STREAM, WINDOW_UPDATE, Conn, block,
    grpc_fields, grpc_message)

GET_FIELDS = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "localhost")]
RANK = {"ignored": 0, "stream": 1, "conn": 2}


def outcome(c, stream, mark):
    """What the server did after `mark`: ('conn', code) for a GOAWAY with an error,
    ('stream', code) for RST_STREAM on `stream`, else ('ignored', None) once our PING is
    answered. A close without GOAWAY counts as ('conn', None)."""
    c.ping(b"statechk")
    deadline = time.monotonic() + WAIT
    found = None
    while True:
        f = c.read_frame(deadline)
        if f == "timeout":
            return found or ("timeout", None)
        if f == "eof":
            return found or ("conn", None)
        if f.type == GOAWAY and f.error_code != 0:
            return ("conn", ERRORS.get(f.error_code, f.error_code))
        if f.type == RST_STREAM and f.stream_id == stream and f.error_code != 0 and not found:
            found = ("stream", ERRORS.get(f.error_code, f.error_code))
        if f.type == PING and f.flags & ACK and f.payload == b"statechk":
            return found or ("ignored", None)


def read_answer(c, stream):
    r = c.read_response(stream, limit=WAIT)
    return r.ended or r.rst is not None


# --- the request paths: each sends a request on `stream` with END_STREAM and returns
# whether its answer may be waited for (False: the window at 0 holds it).
class Path:
    def __init__(self, name, fields, body, window0=False, grpc_open_path=None):
        self.name = name
        self.fields = fields
        self.body = body
        self.window0 = window0
        self.grpc_open_path = grpc_open_path

    def settings(self):
        return [(INITIAL_WINDOW_SIZE, 0)] if self.window0 else []

    def request(self, c, stream, keep_open=False, end=True):
        """keep_open: a request whose answer does not come (BlockForever, or window 0)."""
        fields = self.fields
        if keep_open and self.grpc_open_path:
            fields = grpc_fields(self.grpc_open_path)
        if self.body is None:
            c.headers(stream, block(fields), end_stream=end)
        else:
            c.headers(stream, block(fields))
            if end:
                c.data(stream, self.body, end_stream=True)


GRPC = Path("grpc", grpc_fields(UNARY), grpc_message(SEED_REQUEST), grpc_open_path=BLOCK_FOREVER)
# A gRPC request answered before its body ends (an unknown method: Trailers-Only at once).
GRPC_EARLY = Path("grpc-unimplemented", grpc_fields("/no.Such/Method"), grpc_message(SEED_REQUEST))
GET = Path("get", GET_FIELDS, None)
GET_W0 = Path("get-window0", GET_FIELDS, None, window0=True)


def scenario(kind, path):
    """Runs one stream-state rule on `path` against the server on `port`; returns the
    outcome of the frame that breaks it."""
    def run(port):
        c = Conn(port)
        try:
            c.handshake(path.settings())
            if kind == "data-after-end-open":  # half-closed (remote): the answer has not finished
                if not (path.window0 or path.grpc_open_path):
                    raise RuntimeError("path cannot hold a stream open")
                path.request(c, 1, keep_open=True)
                time.sleep(0.2)
                mark = len(c.log)
                c.data(1, b"late")
            elif kind == "data-after-end-same-read":
                with c.cork():
                    path.request(c, 1)
                    c.data(1, b"late")
                mark = len(c.log)
            elif kind == "data-after-end-closed":  # the answer was read whole: closed
                path.request(c, 1)
                if not read_answer(c, 1):
                    return ("setup", "no answer")
                mark = len(c.log)
                c.data(1, b"late")
            elif kind == "trailers-after-end-open":
                path.request(c, 1, keep_open=True)
                time.sleep(0.2)
                mark = len(c.log)
                c.headers(1, block([("x-late", "1")]), end_stream=True)
            elif kind == "trailers-after-end-closed":
                path.request(c, 1)
                if not read_answer(c, 1):
                    return ("setup", "no answer")
                mark = len(c.log)
                c.headers(1, block([("x-late", "1")]), end_stream=True)
            elif kind == "data-after-client-reset":
                # One write: a non-gRPC request is answered at once, and an answer that
                # ended the stream before the RST arrived would make it ours to ignore.
                with c.cork():
                    path.request(c, 1, end=False)
                    c.send_frame(RST_STREAM, 0, 1, CODE["CANCEL"].to_bytes(4, "big"))
                time.sleep(0.2)
                mark = len(c.log)
                c.data(1, b"late")
            elif kind == "headers-on-skipped-id":
                path.request(c, 5)
                time.sleep(0.2)
                mark = len(c.log)
                path.request(c, 3)
            elif kind == "data-after-our-reset":  # answered before the body ended: RST NO_ERROR
                path.request(c, 1, end=False)
                if not read_answer(c, 1):
                    return ("setup", "no answer")
                mark = len(c.log)
                c.data(1, b"in flight", end_stream=True)
            elif kind == "control-frames-after-close":  # what RFC 9113 5.1 lets arrive on a closed stream
                path.request(c, 1)
                if not read_answer(c, 1):
                    return ("setup", "no answer")
                mark = len(c.log)
                c.send_frame(PRIORITY, 0, 1, (0).to_bytes(4, "big") + b"\x10")
                c.send_frame(WINDOW_UPDATE, 0, 1, (1000).to_bytes(4, "big"))
                c.send_frame(RST_STREAM, 0, 1, CODE["CANCEL"].to_bytes(4, "big"))
            elif kind == "data-on-idle-stream":
                mark = len(c.log)
                c.data(7, b"idle")
            else:
                raise ValueError(kind)
            got = outcome(c, 1 if kind != "headers-on-skipped-id" else 3, mark)
            return got
        finally:
            c.close()
    return run


# What RFC 9113 asks of us for each rule (classes accepted, codes accepted).
EXPECTED = {
    # 5.1 half-closed (remote): a stream error; escalating to a connection error is allowed.
    "data-after-end-open": ({"stream", "conn"}, {"STREAM_CLOSED"}),
    "data-after-end-same-read": ({"stream", "conn"}, {"STREAM_CLOSED"}),
    "trailers-after-end-open": ({"stream", "conn"}, {"STREAM_CLOSED"}),
    # 5.1 closed, after the peer's END_STREAM: a connection error STREAM_CLOSED.
    "data-after-end-closed": ({"conn"}, {"STREAM_CLOSED"}),
    "trailers-after-end-closed": ({"conn"}, {"STREAM_CLOSED"}),
    # 5.1 closed, after the peer's RST_STREAM: a stream error STREAM_CLOSED, which we
    # escalate to a connection error as nghttpd does (5.4 allows it).
    "data-after-client-reset": ({"conn"}, {"STREAM_CLOSED"}),
    # 5.1.1: an identifier below one used, never opened, is closed: PROTOCOL_ERROR.
    "headers-on-skipped-id": ({"conn"}, {"PROTOCOL_ERROR"}),
    # 5.1 closed: frames in flight when we reset the stream MUST be ignored.
    "data-after-our-reset": ({"ignored"}, {None}),
    # 5.1 closed: PRIORITY, WINDOW_UPDATE and RST_STREAM may still arrive.
    "control-frames-after-close": ({"ignored"}, {None}),
    # 5.1 idle: anything but HEADERS/PRIORITY is a connection error PROTOCOL_ERROR.
    "data-on-idle-stream": ({"conn"}, {"PROTOCOL_ERROR"}),
}

CASES = [
    ("data-after-end-open", [GRPC, GET_W0]),
    ("data-after-end-same-read", [GRPC, GET, GET_W0]),
    ("data-after-end-closed", [GRPC, GET]),
    ("trailers-after-end-open", [GRPC, GET_W0]),
    ("trailers-after-end-closed", [GRPC, GET]),
    ("data-after-client-reset", [GRPC, GET, GET_W0]),
    ("headers-on-skipped-id", [GRPC, GET, GET_W0]),
    ("data-on-idle-stream", [GRPC, GET, GET_W0]),
    ("data-after-our-reset", [GRPC_EARLY, GET]),
    ("control-frames-after-close", [GRPC, GET]),
]
# Rules where the RFC requires leniency: judged against the RFC only, not against nghttpd.
RFC_ONLY = {"data-after-our-reset", "control-frames-after-close"}


class Nghttpd:
    """nghttpd (h2c) on 127.0.0.1 serving one small file, for the comparison."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="h2states-")
        with open(os.path.join(self.dir, "index.html"), "w") as f:
            f.write("nghttpd answers GET / with this page\n")
        self.proc = None
        self.port = None
        binary = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
        for port in range(43100, 43140):
            proc = subprocess.Popen([binary, "--no-tls", "-a", "127.0.0.1", "-d", self.dir, str(port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            if proc.poll() is None:
                self.proc, self.port = proc, port
                return
        raise RuntimeError("nghttpd did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


def judged(kind, path, reference):
    def run(port):
        ours = scenario(kind, path)(port)
        classes, codes = EXPECTED[kind]
        text = f"ours {ours}"
        ok = ours[0] in classes and ours[1] in codes
        if reference is not None and not path.name.startswith("grpc") and kind not in RFC_ONLY:
            theirs = scenario(kind, path)(reference.port)
            text += f", nghttpd {theirs}"
            if theirs[0] in RANK and RANK.get(ours[0], -1) < RANK[theirs[0]]:
                ok = False
                text += " (more lenient than nghttpd)"
        return ok, text
    return run


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stream_limit_holds(path, streams=3000):
    """Every open stream counts against the advertised 100, whatever its answer: the 101st
    and later get REFUSED_STREAM (or, past the reset budget, GOAWAY ENHANCE_YOUR_CALM),
    never more than 100 get answers, and the server's memory stays bounded."""
    def run(port, pid):
        c = Conn(port)
        try:
            c.handshake(path.settings())
            limit = (c.server_settings or {}).get(3)  # SETTINGS_MAX_CONCURRENT_STREAMS
            before = rss_kib(pid)
            stream = 1
            for _ in range(streams // 50):
                if c.goaway or c.closed:
                    break  # what the server said is read below, not lost to a reset
                with c.cork():
                    for _ in range(50):
                        path.request(c, stream, keep_open=True)
                        stream += 2
                c.poll(0.005)
            c.pump(lambda: c.goaway is not None, WAIT)
            answered = [sid for sid, st in c.streams.items() if st.header_blocks]
            refused = [sid for sid, st in c.streams.items() if st.rst == CODE["REFUSED_STREAM"]]
            goaway = ERRORS.get(c.goaway[1], c.goaway[1]) if c.goaway else None
            grown = rss_kib(pid) - before
            ok = (limit == 100 and len(answered) <= 100 and len(refused) >= 900
                  and (goaway in (None, "ENHANCE_YOUR_CALM")) and grown < 4096)
            return ok, (f"limit {limit}, {len(answered)} answered, {len(refused)} refused, GOAWAY {goaway}, "
                        f"RSS +{grown} KiB")
        finally:
            c.close()
    return run


def reset_budget_exact(port):
    """2,500 malformed requests (alternately no :path, and content-length 5 with no body) in
    batches of 50: at most 1,000 resets plus what 33/s refills while they arrive, then
    GOAWAY ENHANCE_YOUR_CALM, and no reset after it."""
    c = Conn(port)
    try:
        c.handshake()
        t0 = time.monotonic()
        stream = 1
        for batch in range(50):
            if c.goaway or c.closed:
                break
            with c.cork():
                for i in range(50):
                    if (batch * 50 + i) % 2:
                        fields = [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
                                  ("content-type", "application/grpc"), ("te", "trailers")]
                    else:
                        fields = grpc_fields(UNARY, extra=[("content-length", "5")])
                    c.headers(stream, block(fields), end_stream=True)
                    stream += 2
            c.poll(0.005)
        c.pump(lambda: c.goaway is not None and c.closed is not None, WAIT)
        elapsed = time.monotonic() - t0
        log = c.log
        at = next((i for i, text in enumerate(log) if text.startswith("GOAWAY")), len(log))
        resets = sum(1 for text in log[:at] if text.startswith("RSTSTREAM"))
        after_goaway = sum(1 for text in log[at:] if text.startswith("RSTSTREAM"))
        goaway = ERRORS.get(c.goaway[1], c.goaway[1]) if c.goaway else None
        debug = c.goaway[2] if c.goaway else b""
        slack = int(33 * elapsed) + 1
        ok = goaway == "ENHANCE_YOUR_CALM" and debug == b"too_many_resets" and 1000 <= resets <= 1000 + slack \
            and after_goaway == 0
        return ok, f"{resets} resets in {elapsed:.2f} s (allowed 1000..{1000 + slack}), GOAWAY {goaway}, " \
                   f"{after_goaway} after it"
    finally:
        c.close()


def cases(t):
    try:
        reference = Nghttpd()
    except (OSError, RuntimeError) as e:
        print(f"nghttpd not available ({e}): comparing with the RFC only", flush=True)
        reference = None
    try:
        for kind, paths in CASES:
            for path in paths:
                t.run(f"{kind}/{path.name}", f"{kind} on a {path.name} request", judged(kind, path, reference))
    finally:
        if reference:
            reference.stop()
    pid = t.server.proc.pid
    for path in (GRPC, GET_W0):
        t.run(f"stream-limit/{path.name}", "streams past the advertised 100 are refused, memory bounded",
              lambda port, p=path: stream_limit_holds(p)(port, pid))
    t.run("reset-budget/exact", "the server-induced reset budget is exact across batched reads", reset_budget_exact)


if __name__ == "__main__":
    sys.exit(main_with(cases))
