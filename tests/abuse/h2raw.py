"""A deliberately unsafe HTTP/2 client for the abuse suite: frames are built by hand so that
an attack can send what a well-behaved library (h2) would refuse to send. Responses are
decoded with Debian's python3-hpack; everything the server sends is recorded per stream."""

import os
import select
import socket
import ssl
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5

ERROR_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
               0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM", 0x8: "CANCEL",
               0x9: "COMPRESSION_ERROR", 0xb: "ENHANCE_YOUR_CALM"}


def error_name(code):
    return ERROR_NAMES.get(code, hex(code))


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


# ---- HPACK encoding by hand: literals never enter the server's dynamic table unless an
# attack asks for it, so one connection's later requests never depend on earlier ones.

def hp_int(value, prefix_bits, flags):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = [flags | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hp_str(s):
    b = s.encode() if isinstance(s, str) else s
    return hp_int(len(b), 7, 0) + b


def literal(name, value):
    """Literal header field without indexing, new name."""
    return b"\x00" + hp_str(name) + hp_str(value)


def literal_indexed(name, value):
    """Literal header field with incremental indexing, new name: lands in the dynamic table."""
    return b"\x40" + hp_str(name) + hp_str(value)


def indexed(index):
    return hp_int(index, 7, 0x80)


def request_block(path, extra=()):
    block = b"".join(literal(n, v) for n, v in (
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"), ("te", "trailers")))
    return block + b"".join(literal(n, v) for n, v in extra)


def grpc_message(payload):
    payload = payload.encode() if isinstance(payload, str) else payload
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Stream:
    def __init__(self):
        self.headers = None    # first header block (list of (name, value))
        self.trailers = None   # second block, or the first when it ended the stream
        self.data = 0          # DATA payload bytes received
        self.rst = None        # RST_STREAM error code from the server
        self.ended = False     # END_STREAM seen

    def header(self, name):
        for block in (self.trailers, self.headers):
            for n, v in block or ():
                if n == name:
                    return v
        return None

    def grpc_status(self):
        v = self.header("grpc-status")
        return int(v) if v is not None else None

    def http_status(self):
        v = self.header(":status")
        return int(v) if v is not None else None


class ConnClosed(Exception):
    pass


class RawConn:
    """One HTTP/2 connection over a plain (or TLS) socket. Methods never block longer than
    the timeout they are given; everything received is parsed and recorded."""

    def __init__(self, port, host="127.0.0.1", rcvbuf=None, tls=False, connect_timeout=5.0):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Set before connect so the advertised TCP window is small from the start.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(connect_timeout)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.buf = bytearray()
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
        self.auto_window = True     # grant back every DATA byte (a well-behaved reader)
        self._block = None          # (stream_id, flags, bytes) while CONTINUATIONs follow

    # ---- sending
    def send(self, data, timeout=5.0):
        """Sends all of data; returns False if the server stopped reading for `timeout`
        seconds (the socket buffer stayed full) or the connection is gone."""
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
                # A full send buffer: read meanwhile, or the server may wait on us.
                self.poll(0)
                continue
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self._mark_closed("reset")
                return False
            view = view[n:]
        return True

    def send_frame(self, ftype, flags, sid, payload=b"", timeout=5.0):
        return self.send(frame(ftype, flags, sid, payload), timeout)

    def handshake(self, settings=(), wait=True, timeout=3.0):
        """Preface + our SETTINGS; with wait, until the server's SETTINGS arrived and ours are acked."""
        payload = b"".join(struct.pack(">HI", k, v) for k, v in settings)
        self.send(PREFACE + frame(SETTINGS, 0, 0, payload))
        if wait and not self.pump(lambda: self.server_settings is not None and self.settings_acks > 0, timeout):
            raise ConnClosed("no SETTINGS exchange with the server (closed=%s goaway=%s)" % (self.closed, self.goaway))

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

    def poll(self, timeout):
        """Reads what arrives within timeout (one wait), parses it; False once closed."""
        if self.closed:
            return False
        try:
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending:
                r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
                if not r:
                    return True
            self.sock.settimeout(0)
            chunk = self.sock.recv(1 << 18)
        except (BlockingIOError, ssl.SSLWantReadError, socket.timeout):
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            self._mark_closed("reset")
            return False
        if not chunk:
            self._mark_closed("eof")
            return False
        self.buf += chunk
        self._parse()
        return True

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

    def _parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self.buf[9:9 + length])
            del self.buf[:9 + length]
            self.frames_in += 1
            self._on_frame(ftype, flags, sid, payload)

    def _stream(self, sid):
        return self.streams.setdefault(sid, Stream())

    def _on_frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                self.server_settings = {struct.unpack(">H", payload[i:i + 2])[0]: struct.unpack(">I", payload[i + 2:i + 6])[0]
                                        for i in range(0, len(payload), 6)}
                self.send(frame(SETTINGS, ACK, 0), timeout=1.0)
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks += 1
            else:
                self.send(frame(PING, ACK, 0, payload), timeout=1.0)
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])
        elif ftype == RST_STREAM:
            self._stream(sid).rst = struct.unpack(">I", payload[:4])[0]
            self.rst_count += 1
        elif ftype == DATA:
            st = self._stream(sid)
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            st.data += len(payload)
            if flags & END_STREAM:
                st.ended = True
            if self.auto_window and payload:
                out = frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload)))
                if not st.ended:
                    out += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(payload)))
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
                bsid, bflags, block = self._block
                self._block = None
                fields = [(n, v) for n, v in self.decoder.decode(bytes(block))]
                st = self._stream(bsid)
                if st.headers is None and not (bflags & END_STREAM):
                    st.headers = fields
                else:
                    if st.headers is None:
                        st.headers = fields
                    st.trailers = fields
                if bflags & END_STREAM:
                    st.ended = True

    def finished(self, sid):
        st = self.streams.get(sid)
        return st is not None and (st.ended or st.rst is not None)

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


def random_bytes(n):
    return os.urandom(n)
