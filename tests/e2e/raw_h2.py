# Shared helper of the Python wire-level tests (h2_conformance_test.py,
# grpc_edge_cases_test.py): starts tests/seed's seed-server, speaks HTTP/2 to it over a raw
# socket (frames built by hand so they can be malformed on purpose; incoming frames parsed by
# hyperframe, header blocks by hpack) and judges the answers. Run with Debian's /usr/bin/python3.
import contextlib
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_report import Report, Skip  # noqa: E402
from hpack import Decoder, Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,
                              HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# Settings identifiers.
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

# Error codes (RFC 9113 section 7).
ERRORS = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
          0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM",
          0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR", 0xb: "ENHANCE_YOUR_CALM",
          0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED"}
CODE = {name: code for code, name in ERRORS.items()}

# The seed's unary method and its fixed request/response payloads (tests/seed/seed_service.h).
UNARY = "/test/SimpleUnaryUnary"
BLOCK_FOREVER = "/test/BlockForever"
BLOCK_BRIEFLY = "/test/BlockBriefly"  # sleeps 2 s, then answers
SEED_REQUEST = b"\x00\x00\x00"
SEED_RESPONSE = b"\x01\x01\x01"

# How long to wait for an answer that should come at once. Generous because the test
# machine is shared; a passing case returns as soon as its answer arrives.
WAIT = 2.0


def frame(ftype, flags, stream, payload=b""):
    """One frame, byte for byte: nothing is checked, so any field may be wrong on purpose."""
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream) + payload


def settings_payload(pairs):
    return b"".join(struct.pack(">HI", k, v) for k, v in pairs)


def grpc_message(payload, flag=0, length=None):
    """The 5-byte gRPC length prefix, then the payload."""
    return struct.pack(">BI", flag, len(payload) if length is None else length) + payload


def hpack_int(value, prefix_bits, first_byte_high=0):
    """RFC 7541 5.1 integer with an N-bit prefix; high bits of the first byte given."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_high | value])
    out = bytearray([first_byte_high | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    if isinstance(s, str):
        s = s.encode("latin-1")
    return hpack_int(len(s), 7) + s


def literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2): what
    the encoder must never normalise, so names and values go out exactly as given."""
    return b"\x00" + hpack_str(name) + hpack_str(value)


def block(fields):
    return b"".join(literal(k, v) for k, v in fields)


def grpc_fields(path=UNARY, content_type="application/grpc", extra=()):
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
              ("content-type", content_type), ("te", "trailers")]
    return fields + list(extra)


class Response:
    """What came back on one stream."""

    def __init__(self):
        self.header_blocks = []
        self.data = b""
        self.data_frames = []
        self.ended = False
        self.rst = None
        self.goaway = None
        self.eof = False
        self.timeout = False
        self.times = {}

    def header(self, name):
        for blk in self.header_blocks:
            for k, v in blk:
                if k == name:
                    return v
        return None

    def trailer(self, name):
        if len(self.header_blocks) < 1:
            return None
        for k, v in self.header_blocks[-1]:
            if k == name:
                return v
        return None

    def describe(self):
        parts = []
        for blk in self.header_blocks:
            parts.append("{" + ", ".join(f"{k}: {v}" for k, v in blk) + "}")
        if self.data:
            shown = self.data[:60]
            parts.append(f"data={len(self.data)}B {shown!r}")
        if self.ended:
            parts.append("END_STREAM")
        if self.rst is not None:
            parts.append(f"RST_STREAM {ERRORS.get(self.rst, self.rst)}")
        if self.goaway is not None:
            parts.append(f"GOAWAY {ERRORS.get(self.goaway, self.goaway)}")
        if self.eof:
            parts.append("connection closed")
        if self.timeout:
            parts.append("timeout")
        return " ".join(parts) or "nothing"


class Conn:
    """A hand-driven HTTP/2 client connection. Every read is bounded."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.server_settings = {}
        self.pending_block = {}  # stream -> (fragments, end_stream) of a header block in progress
        self.log = []  # short text of every frame seen, for failure messages
        self.corked = None  # frames held by cork()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        """False once the peer is gone: a closed connection is an answer, not a test error."""
        if self.corked is not None:
            self.corked.append(data)
            return True
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    @contextlib.contextmanager
    def cork(self):
        """Frames sent inside go out in one write, so the server reads them together: cases
        whose answer depends on the stream's state must not race a fast server's response."""
        self.corked = []
        try:
            yield
        finally:
            pending, self.corked = b"".join(self.corked), None
            self.send(pending)

    def send_frame(self, ftype, flags, stream, payload=b""):
        return self.send(frame(ftype, flags, stream, payload))

    def handshake(self, settings=()):
        """Preface and our SETTINGS; waits for the server's SETTINGS and its ACK of ours."""
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings_payload(settings)))
        got_settings = got_ack = False
        deadline = time.monotonic() + WAIT
        while not (got_settings and got_ack):
            f = self.read_frame(deadline)
            if not isinstance(f, Frame):
                raise RuntimeError(f"handshake: {f} after {self.log}")
            if isinstance(f, SettingsFrame):
                if "ACK" in f.flags:
                    got_ack = True
                else:
                    got_settings = True

    def encode(self, fields):
        """A header block through hpack's own encoder (indexing, Huffman): the normal path."""
        return self.encoder.encode(fields)

    def headers(self, stream, fields_or_block, end_stream=False, end_headers=True):
        blk = fields_or_block if isinstance(fields_or_block, bytes) else self.encode(fields_or_block)
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return self.send_frame(HEADERS, flags, stream, blk)

    def data(self, stream, payload, end_stream=False):
        return self.send_frame(DATA, END_STREAM if end_stream else 0, stream, payload)

    def unary_request(self, stream, path=UNARY, extra=(), payload=SEED_REQUEST, content_type="application/grpc"):
        self.headers(stream, grpc_fields(path, content_type, extra))
        self.data(stream, grpc_message(payload), end_stream=True)

    def ping(self, opaque=b"h2check!"):
        return self.send_frame(PING, 0, 0, opaque)

    def read_frame(self, deadline):
        """The next frame, or 'eof' / 'timeout'. SETTINGS are acknowledged here."""
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    head, body = self.buf[:9], self.buf[9:9 + length]
                    self.buf = self.buf[9 + length:]
                    f, _ = Frame.parse_frame_header(memoryview(head))
                    f.parse_body(memoryview(body))
                    self.log.append(self.describe_frame(f))
                    if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                        self.server_settings.update(f.settings)
                        self.send_frame(SETTINGS, ACK, 0)
                    return f
            if self.eof:
                return "eof"
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return "timeout"
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk

    @staticmethod
    def describe_frame(f):
        name = type(f).__name__.replace("Frame", "").upper()
        s = f"{name}(s={f.stream_id}"
        if f.flags:
            s += "," + "|".join(sorted(f.flags))
        if isinstance(f, GoAwayFrame):
            s += f",{ERRORS.get(f.error_code, f.error_code)},last={f.last_stream_id}"
        elif isinstance(f, RstStreamFrame):
            s += f",{ERRORS.get(f.error_code, f.error_code)}"
        elif isinstance(f, DataFrame):
            s += f",{len(f.data)}B"
        elif isinstance(f, WindowUpdateFrame):
            s += f",+{f.window_increment}"
        return s + ")"

    def decode_block(self, stream, f):
        """Collects HEADERS + CONTINUATION fragments; returns (fields, end_stream) when whole."""
        if isinstance(f, HeadersFrame):
            self.pending_block[stream] = ([f.data], "END_STREAM" in f.flags)
        elif stream in self.pending_block:
            self.pending_block[stream][0].append(f.data)
        else:
            return None
        if "END_HEADERS" not in f.flags:
            return None
        frags, end = self.pending_block.pop(stream)
        fields = [(k.decode("latin-1") if isinstance(k, bytes) else k,
                   v.decode("latin-1") if isinstance(v, bytes) else v)
                  for k, v in self.decoder.decode(b"".join(frags), raw=True)]
        return fields, end

    def read_response(self, stream, limit=5.0):
        """Frames until `stream` ends (END_STREAM or RST_STREAM) or the connection ends."""
        r = Response()
        t0 = time.monotonic()
        deadline = t0 + limit
        while not r.ended and r.rst is None:
            f = self.read_frame(deadline)
            if f == "eof":
                r.eof = True
                break
            if f == "timeout":
                r.timeout = True
                break
            if isinstance(f, GoAwayFrame):
                r.goaway = f.error_code
            if isinstance(f, (HeadersFrame, ContinuationFrame)):
                got = self.decode_block(f.stream_id, f)
                if got and f.stream_id == stream:
                    r.header_blocks.append(got[0])
                    if got[1]:
                        r.ended = True
                        r.times["end"] = time.monotonic() - t0
            if f.stream_id != stream:
                continue
            if isinstance(f, DataFrame):
                r.data += f.data
                r.data_frames.append(len(f.data))
                if "END_STREAM" in f.flags:
                    r.ended = True
                    r.times["end"] = time.monotonic() - t0
            elif isinstance(f, RstStreamFrame):
                r.rst = f.error_code
                r.times["end"] = time.monotonic() - t0
        return r

    def read_responses(self, streams, limit=5.0):
        """Several streams at once (each read whole), keyed by stream id."""
        out = {s: Response() for s in streams}
        t0 = time.monotonic()
        deadline = t0 + limit
        left = set(streams)
        while left:
            f = self.read_frame(deadline)
            if f in ("eof", "timeout"):
                for s in left:
                    setattr(out[s], "eof" if f == "eof" else "timeout", True)
                break
            r = out.get(f.stream_id)
            if isinstance(f, (HeadersFrame, ContinuationFrame)):
                got = self.decode_block(f.stream_id, f)
                if got and r:
                    r.header_blocks.append(got[0])
                    r.ended = r.ended or got[1]
            elif isinstance(f, DataFrame) and r:
                r.data += f.data
                r.ended = r.ended or "END_STREAM" in f.flags
            elif isinstance(f, RstStreamFrame) and r:
                r.rst = f.error_code
            elif isinstance(f, GoAwayFrame):
                for s in left:
                    out[s].goaway = f.error_code
            if r and f.stream_id in left and (r.ended or r.rst is not None):
                r.times["end"] = time.monotonic() - t0
                left.discard(f.stream_id)
        return out


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
        if isinstance(f, GoAwayFrame) and goaway is None:
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
        if isinstance(f, GoAwayFrame):
            return False, seen_since(c, mark)
        if isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == opaque:
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
        if isinstance(f, GoAwayFrame):
            if not (conn_ok and f.error_code in codes):
                return False, seen_since(c, mark)
            # Escalated to a connection error: the connection must now close.
            while f not in ("eof", "timeout"):
                f = c.read_frame(deadline)
            return f == "eof", seen_since(c, mark) + ("" if f == "eof" else " (GOAWAY sent but connection left open)")
        if isinstance(f, (HeadersFrame, ContinuationFrame)):
            c.decode_block(f.stream_id, f)  # keep the HPACK decoder in step
        if isinstance(f, RstStreamFrame) and f.stream_id == stream:
            if f.error_code not in codes:
                return False, seen_since(c, mark)
            ok, _ = expect_ping_ack(c, mark)
            return ok, seen_since(c, mark) + ("" if ok else " (connection unusable after the stream error)")


def healthy(port):
    """A fresh connection is served: the seed's unary call answers OK with its payload."""
    c = Conn(port)
    try:
        c.handshake()
        c.unary_request(1)
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
    sys.exit("raw_h2.py is a helper module; run the *_test.py files")
