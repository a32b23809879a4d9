# h2wire: the HTTP/2 wire helper of every Python test (tests/e2e wire tests, the abuse suite,
# tests/fuzz/make_corpus.py). Frames and HPACK literals are built by hand so they can be
# malformed on purpose; Conn speaks them over a raw (or TLS) socket and records what comes back.
import collections
import contextlib
import select
import socket
import ssl
import struct
import time

import hpack

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

# Frame names in failure messages, and the flags each type defines.
_NAMES = ["DATA", "HEADERS", "PRIORITY", "RSTSTREAM", "SETTINGS", "PUSHPROMISE", "PING", "GOAWAY",
          "WINDOWUPDATE", "CONTINUATION"]
_FLAGS = {DATA: {END_STREAM: "END_STREAM", PADDED: "PADDED"},
          HEADERS: {END_STREAM: "END_STREAM", END_HEADERS: "END_HEADERS", PADDED: "PADDED",
                    PRIORITY_FLAG: "PRIORITY"},
          SETTINGS: {ACK: "ACK"}, PING: {ACK: "ACK"}, CONTINUATION: {END_HEADERS: "END_HEADERS"},
          PUSH_PROMISE: {END_HEADERS: "END_HEADERS", PADDED: "PADDED"}}


def error_name(code):
    return ERRORS.get(code, hex(code))


# ---- building

def frame(ftype, flags, stream, payload=b""):
    """One frame, byte for byte: nothing is checked, so any field may be wrong on purpose."""
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream) + payload


def settings_payload(pairs):
    return b"".join(struct.pack(">HI", k, v) for k, v in pairs)


def grpc_message(payload, flag=0, length=None):
    """The 5-byte gRPC length prefix (length: a false one on purpose), then the payload."""
    payload = payload.encode() if isinstance(payload, str) else payload
    return struct.pack(">BI", flag, len(payload) if length is None else length) + payload


# HPACK by hand: literals never enter the server's dynamic table unless a test asks for it,
# so one connection's later requests never depend on earlier ones.

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
    """A string literal without Huffman coding; str goes out as latin-1, one byte a char."""
    if isinstance(s, str):
        s = s.encode("latin-1")
    return hpack_int(len(s), 7) + s


def literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2): what
    the encoder must never normalise, so names and values go out exactly as given."""
    return b"\x00" + hpack_str(name) + hpack_str(value)


def literal_indexed(name, value):
    """Literal header field with incremental indexing, new name: lands in the dynamic table."""
    return b"\x40" + hpack_str(name) + hpack_str(value)


def indexed(index):
    return hpack_int(index, 7, 0x80)


def block(fields):
    return b"".join(literal(k, v) for k, v in fields)


def grpc_fields(path, content_type="application/grpc", extra=()):
    """A gRPC request's header fields, in the order a client sends them, then `extra`."""
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
              ("content-type", content_type), ("te", "trailers")]
    return fields + list(extra)


def request_block(path, extra=()):
    """The gRPC request header block as literals (see grpc_fields)."""
    return block(grpc_fields(path, extra=extra))


# ---- reading

class Frame:
    """One frame received. `block` is (fields, end_stream) on the frame that completed a
    header block (HEADERS or its last CONTINUATION), decoded by the connection."""

    def __init__(self, ftype, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = ftype, flags, stream_id, payload
        self.block = None

    @property
    def data(self):
        """DATA: the payload without padding."""
        if self.type == DATA and self.flags & PADDED and self.payload:
            return self.payload[1:len(self.payload) - self.payload[0]]
        return self.payload

    @property
    def error_code(self):
        """RST_STREAM and GOAWAY."""
        at = 4 if self.type == GOAWAY else 0
        return struct.unpack(">I", self.payload[at:at + 4])[0]

    @property
    def last_stream_id(self):
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    @property
    def opaque_data(self):
        return self.payload

    @property
    def window_increment(self):
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    @property
    def settings(self):
        return {struct.unpack(">H", self.payload[i:i + 2])[0]: struct.unpack(">I", self.payload[i + 2:i + 6])[0]
                for i in range(0, len(self.payload) - 5, 6)}

    def describe(self):
        name = _NAMES[self.type] if self.type < len(_NAMES) else f"TYPE{self.type}"
        s = f"{name}(s={self.stream_id}"
        names = sorted(n for bit, n in _FLAGS.get(self.type, {}).items() if self.flags & bit)
        if names:
            s += "," + "|".join(names)
        if self.type == GOAWAY:
            s += f",{ERRORS.get(self.error_code, self.error_code)},last={self.last_stream_id}"
        elif self.type == RST_STREAM:
            s += f",{ERRORS.get(self.error_code, self.error_code)}"
        elif self.type == DATA:
            s += f",{len(self.data)}B"
        elif self.type == WINDOW_UPDATE:
            s += f",+{self.window_increment}"
        return s + ")"


class Stream:
    """What came back on one stream."""

    def __init__(self):
        self.header_blocks = []  # each a list of (name, value), in arrival order
        self.received = bytearray()  # DATA payloads (a bytearray: big downloads stay linear)
        self.data_frames = []    # payload length of each DATA frame
        self.ended = False       # END_STREAM seen
        self.rst = None          # RST_STREAM error code from the server
        # Set by read_response(s): how the read ended.
        self.goaway = None
        self.eof = False
        self.timeout = False
        self.times = {}

    @property
    def data(self):
        return bytes(self.received)

    @property
    def headers(self):
        return self.header_blocks[0] if self.header_blocks else None

    @property
    def trailers(self):
        """The second block, or the first when it ended the stream (trailers-only)."""
        if len(self.header_blocks) > 1 or (self.header_blocks and self.ended and not self.data_frames):
            return self.header_blocks[-1]
        return None

    def header(self, name):
        for blk in self.header_blocks:
            for k, v in blk:
                if k == name:
                    return v
        return None

    def trailer(self, name):
        if not self.header_blocks:
            return None
        for k, v in self.header_blocks[-1]:
            if k == name:
                return v
        return None

    def grpc_status(self):
        for blk in reversed(self.header_blocks):
            for k, v in blk:
                if k == "grpc-status":
                    return int(v)
        return None

    def http_status(self):
        v = self.header(":status")
        return int(v) if v is not None else None

    def describe(self):
        parts = []
        for blk in self.header_blocks:
            parts.append("{" + ", ".join(f"{k}: {v}" for k, v in blk) + "}")
        if self.received:
            parts.append(f"data={len(self.received)}B {bytes(self.received[:60])!r}")
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


class ConnClosed(RuntimeError):
    pass


class Conn:
    """One hand-driven HTTP/2 client connection over a plain (or TLS) socket. Every wait is
    bounded. Whatever arrives is parsed, logged and recorded per stream as it is read; the
    server's SETTINGS and PINGs are acknowledged, and with auto_window every DATA byte is
    granted back (a well-behaved reader). Read frame by frame (read_frame, read_response) or
    until a condition holds (pump)."""

    def __init__(self, port, host="127.0.0.1", rcvbuf=None, tls=False, connect_timeout=5.0, auto_window=True):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Set before connect so the advertised TCP window is small from the start.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(connect_timeout)
        try:
            sock.connect((host, port))
        except OSError:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.auto_window = auto_window
        self.buf = bytearray()
        self.pending = collections.deque()  # parsed, not yet returned by read_frame
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.streams = {}
        self.next_sid = 1
        self.goaway = None          # (last_stream_id, code, debug_data)
        self.closed = None          # None, "eof" or "reset"
        self.closed_at = None
        self.ping_acks = 0
        self.settings_acks = 0      # ACKs of our SETTINGS
        self.server_settings = None
        self.rst_count = 0
        self.frames_in = 0
        self.log = []               # short text of every frame seen, for failure messages
        self.corked = None          # frames held by cork()
        self._block = None          # (stream_id, flags, bytes) while CONTINUATIONs follow

    @property
    def eof(self):
        return self.closed is not None

    # ---- sending
    def send(self, data, timeout=5.0):
        """Sends all of data; False if the server stopped reading for `timeout` seconds (the
        socket buffer stayed full) or the connection is gone: a closed connection is an
        answer, not a test error."""
        if self.corked is not None:
            self.corked.append(data)
            return True
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(min(left, 0.2))
            try:
                n = self.sock.send(view)
            except (socket.timeout, ssl.SSLWantWriteError):
                # A full send buffer: read meanwhile (kept for read_frame), or the server may wait on us.
                self._recv(0)
                self._parse_all()
                continue
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self._mark_closed("reset")
                return False
            view = view[n:]
        return True

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

    def send_frame(self, ftype, flags, stream, payload=b"", timeout=5.0):
        return self.send(frame(ftype, flags, stream, payload), timeout)

    def handshake(self, settings=(), wait=True, timeout=3.0):
        """Preface and our SETTINGS; with wait, until the server's SETTINGS arrived and ours
        are acknowledged (ConnClosed otherwise)."""
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings_payload(settings)))
        if not wait:
            return
        # Frame by frame, so what follows the exchange stays for read_frame.
        deadline = time.monotonic() + timeout
        while not (self.server_settings is not None and self.settings_acks > 0):
            if self.read_frame(deadline) in ("eof", "timeout"):
                raise ConnClosed(f"no SETTINGS exchange with the server (closed={self.closed} "
                                 f"goaway={self.goaway}) after {self.log}")

    def encode(self, fields):
        """A header block through hpack's own encoder (indexing, Huffman): the normal path."""
        return self.encoder.encode(fields)

    def headers(self, stream, fields_or_block, end_stream=False, end_headers=True):
        blk = fields_or_block if isinstance(fields_or_block, bytes) else self.encode(fields_or_block)
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return self.send_frame(HEADERS, flags, stream, blk)

    def data(self, stream, payload, end_stream=False):
        return self.send_frame(DATA, END_STREAM if end_stream else 0, stream, payload)

    def ping(self, opaque=b"h2check!"):
        return self.send_frame(PING, 0, 0, opaque)

    def new_sid(self):
        sid = self.next_sid
        self.next_sid += 2
        self.streams[sid] = Stream()
        return sid

    def call_bytes(self, path, payload, end_stream=True, extra=()):
        """Bytes of a whole unary request on a new stream (HEADERS + DATA); returns (sid, bytes)."""
        sid = self.new_sid()
        out = frame(HEADERS, END_HEADERS, sid, request_block(path, extra))
        out += frame(DATA, END_STREAM if end_stream else 0, sid, grpc_message(payload))
        return sid, out

    def call(self, path, payload, end_stream=True, extra=()):
        sid, out = self.call_bytes(path, payload, end_stream, extra)
        self.send(out)
        return sid

    def headers_only(self, path, extra=()):
        """Opens a stream with request headers and no body yet."""
        sid = self.new_sid()
        self.send_frame(HEADERS, END_HEADERS, sid, request_block(path, extra))
        return sid

    # ---- receiving
    def _mark_closed(self, how):
        if self.closed is None:
            self.closed = how
            self.closed_at = time.monotonic()

    def _recv(self, timeout):
        """One read of what arrives within timeout into buf; marks the connection closed on
        EOF or reset."""
        if self.closed:
            return
        try:
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending:
                r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
                if not r:
                    return
            self.sock.settimeout(0)
            chunk = self.sock.recv(1 << 18)
        except (BlockingIOError, ssl.SSLWantReadError, socket.timeout):
            return
        except (ConnectionResetError, ssl.SSLError, OSError):
            self._mark_closed("reset")
            return
        if not chunk:
            self._mark_closed("eof")
            return
        self.buf += chunk

    def _parse_one(self):
        """The next whole frame of buf, processed; None if buf holds none."""
        if len(self.buf) < 9:
            return None
        length = int.from_bytes(self.buf[0:3], "big")
        if len(self.buf) < 9 + length:
            return None
        f = Frame(self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                  bytes(self.buf[9:9 + length]))
        del self.buf[:9 + length]
        self.frames_in += 1
        self._on_frame(f)
        self.log.append(f.describe())
        return f

    def _parse_all(self):
        while True:
            f = self._parse_one()
            if f is None:
                return
            self.pending.append(f)

    def read_frame(self, deadline):
        """The next frame, or 'eof' / 'timeout' (deadline: a time.monotonic() value)."""
        while True:
            if self.pending:
                return self.pending.popleft()
            f = self._parse_one()
            if f is not None:
                return f
            if self.closed:
                return "eof"
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            self._recv(left)

    def poll(self, timeout):
        """Reads what arrives within timeout (one wait) and records it, for callers that look
        at the records rather than at frames; False once closed."""
        self._recv(timeout)
        self._parse_all()
        self.pending.clear()
        return self.closed is None

    def pump(self, until, timeout):
        """Reads until until() holds, the connection closes or timeout passes; returns until()."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0 or not self.poll(min(left, 0.05)):
                break
        return until()

    def wait_closed(self, timeout):
        """Drains until the server closes the connection; returns True if it did in time."""
        return self.pump(lambda: self.closed is not None, timeout)

    def stream(self, sid):
        return self.streams.setdefault(sid, Stream())

    def finished(self, sid):
        st = self.streams.get(sid)
        return st is not None and (st.ended or st.rst is not None)

    def _on_frame(self, f):
        ftype, flags, sid, payload = f.type, f.flags, f.stream_id, f.payload
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                if self.server_settings is None:
                    self.server_settings = {}
                self.server_settings.update(f.settings)
                self.send(frame(SETTINGS, ACK, 0), timeout=1.0)
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks += 1
            else:
                self.send(frame(PING, ACK, 0, payload), timeout=1.0)
        elif ftype == GOAWAY:
            self.goaway = (f.last_stream_id, f.error_code, payload[8:])
        elif ftype == RST_STREAM:
            self.stream(sid).rst = f.error_code
            self.rst_count += 1
        elif ftype == DATA:
            st = self.stream(sid)
            data = f.data
            st.received += data
            st.data_frames.append(len(data))
            if flags & END_STREAM:
                st.ended = True
            if self.auto_window and data:
                out = frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(data)))
                if not st.ended:
                    out += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(data)))
                self.send(out, timeout=1.0)
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                self._block = (sid, flags, bytearray(payload))
            elif self._block is not None:
                self._block[2].extend(payload)
            if flags & END_HEADERS and self._block is not None:
                bsid, bflags, blk = self._block
                self._block = None
                fields = [(k.decode("latin-1") if isinstance(k, bytes) else k,
                           v.decode("latin-1") if isinstance(v, bytes) else v)
                          for k, v in self.decoder.decode(bytes(blk), raw=True)]
                st = self.stream(bsid)
                st.header_blocks.append(fields)
                if bflags & END_STREAM:
                    st.ended = True
                f.block = (fields, bool(bflags & END_STREAM))

    def read_response(self, stream, limit=5.0):
        """Frames until `stream` ends (END_STREAM or RST_STREAM) or the connection ends;
        returns its Stream record."""
        r = self.stream(stream)
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
            if f.type == GOAWAY:
                r.goaway = f.error_code
            if f.stream_id == stream and (r.ended or r.rst is not None):
                r.times["end"] = time.monotonic() - t0
        return r

    def read_responses(self, streams, limit=5.0):
        """Several streams at once (each read whole), keyed by stream id."""
        out = {s: self.stream(s) for s in streams}
        t0 = time.monotonic()
        deadline = t0 + limit
        left = {s for s in streams if not (out[s].ended or out[s].rst is not None)}
        while left:
            f = self.read_frame(deadline)
            if f in ("eof", "timeout"):
                for s in left:
                    setattr(out[s], "eof" if f == "eof" else "timeout", True)
                break
            if f.type == GOAWAY:
                for s in left:
                    out[s].goaway = f.error_code
            r = out.get(f.stream_id)
            if r and f.stream_id in left and (r.ended or r.rst is not None):
                r.times["end"] = time.monotonic() - t0
                left.discard(f.stream_id)
        return out

    def close(self, rst=False):
        if rst:
            # SO_LINGER 0: close() sends a TCP RST, the peer "vanishes" mid-stream.
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass
