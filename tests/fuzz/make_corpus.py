#!/usr/bin/python3
# Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/), so the seeds
# can be read and regenerated rather than being opaque blobs. Run it from anywhere with
# Debian's python (it needs python3-hpack, installed with python3-h2): the files it
# writes are committed; `make fuzz` only reads them.
import os
import struct
import sys

import hpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "common"))
from h2wire import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PADDED,  # noqa: E402
                    PING, RST_STREAM, SETTINGS, WINDOW_UPDATE, frame, grpc_message)

# --- HTTP/2 and gRPC framing: tests/common/h2wire.py --------------------------------------


class Client:
    """One client connection's frames. The HPACK encoder keeps its dynamic table across
    requests, as a real client's does; literals stay unhuffman'd so the fuzzer can mutate
    the header text in place."""

    def __init__(self):
        self.enc = hpack.Encoder()
        # The server's SETTINGS arrive first; a client acknowledges them.
        self.out = frame(SETTINGS, ACK, 0)

    def headers(self, stream, path="/fuzz.Echo/Unary", extra=(), end_stream=False, base=None):
        fields = base if base is not None else [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "fuzz"),
            ("content-type", "application/grpc"), ("te", "trailers")]
        block = self.enc.encode(list(fields) + list(extra), huffman=False)
        self.out += frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block)
        return self

    def data(self, stream, payload, end_stream=False):
        self.out += frame(DATA, END_STREAM if end_stream else 0, stream, payload)
        return self

    def raw(self, b):
        self.out += b
        return self


# The connection target's first byte (see Options in connection_fuzz.cc).
PREFACE = 0x01  # add the client preface and an empty SETTINGS


def chunking(n):
    return n << 2


GRACEFUL, CANCEL_ALL, TIGHT = 0x20, 0x40, 0x80


def connection_seeds():
    seeds = {}
    seeds["unary_echo"] = (PREFACE, Client().headers(1).data(1, grpc_message(b"hello"), end_stream=True))

    c = Client()
    for sid, first in ((1, b"A"), (3, b"T"), (5, b"C"), (7, b"plain")):
        c.headers(sid).data(sid, grpc_message(first + b" request"), end_stream=True)
    c.headers(9, extra=[("x-user", "fuzz"), ("x-trace-bin", "AAEC")]).data(9, grpc_message(b"M echo metadata"), end_stream=True)
    seeds["unary_variants"] = (PREFACE | chunking(5), c)

    seeds["server_stream_deadline"] = (
        PREFACE | chunking(1),
        Client().headers(1, "/fuzz.Echo/ServerStream", extra=[("grpc-timeout", "1S")])
        .data(1, grpc_message(b"\x03three"), end_stream=True))

    # Four messages cut so that prefixes and payloads straddle DATA frames; one padded frame.
    stream = b"".join(grpc_message(bytes([65 + i]) * (i * 7)) for i in range(4))
    padded = bytes([3]) + stream[10:20] + b"\x00" * 3
    seeds["client_stream_split"] = (
        PREFACE | chunking(3),
        Client().headers(1, "/fuzz.Echo/ClientStream").data(1, stream[:3]).data(1, stream[3:10])
        .raw(frame(DATA, PADDED, 1, padded)).data(1, stream[20:], end_stream=True))

    seeds["bidi_ping_window"] = (
        PREFACE,
        Client().headers(1, "/fuzz.Echo/Bidi").data(1, grpc_message(b"one"))
        .raw(frame(PING, 0, 0, b"12345678")).data(1, grpc_message(b"two"))
        .raw(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)))
        .raw(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 4096)))
        .data(1, grpc_message(b"three")).data(1, b"", end_stream=True))

    base = [(":method", "POST"), (":scheme", "http"), (":path", "/fuzz.Echo/Unary"), (":authority", "fuzz")]
    c = Client()
    c.headers(1, base=[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "fuzz")], end_stream=True)
    c.headers(3, base=base + [("content-type", "text/plain"), ("te", "trailers")], end_stream=True)
    c.headers(5, base=base + [("content-type", "application/grpc")], end_stream=True)
    c.headers(7, extra=[("grpc-timeout", "1x")], end_stream=True)
    c.headers(9, extra=[("grpc-encoding", "gzip")], end_stream=True)
    c.headers(11, "/fuzz.Echo/Missing", end_stream=True)
    c.headers(13, extra=[("x-bad-bin", "!!!")], end_stream=True)
    seeds["rejections"] = (PREFACE, c)

    seeds["client_reset"] = (
        PREFACE,
        Client().headers(1, "/fuzz.Echo/Bidi").data(1, grpc_message(b"x"))
        .raw(frame(RST_STREAM, 0, 1, struct.pack(">I", 8))))

    c = Client()
    for sid in (1, 3, 5):
        c.headers(sid, "/fuzz.Echo/ClientStream")
    c.data(1, grpc_message(b"y" * 100), end_stream=True).data(3, grpc_message(b"z" * 40) * 3, end_stream=True)
    seeds["tight_limits"] = (PREFACE | TIGHT | chunking(2), c)

    seeds["graceful_shutdown"] = (
        PREFACE | GRACEFUL,
        Client().headers(1).raw(frame(PING, ACK, 0, b"urpcstop")).data(1, grpc_message(b"late"), end_stream=True)
        .headers(3, end_stream=True))

    seeds["cancel_all"] = (
        PREFACE | CANCEL_ALL,
        Client().headers(1, "/fuzz.Echo/ClientStream").data(1, grpc_message(b"pending"))
        .headers(3, "/fuzz.Echo/Bidi").data(3, grpc_message(b"open")))

    c = Client()
    block = c.enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/fuzz.Echo/Unary"),
                          (":authority", "fuzz"), ("content-type", "application/grpc"), ("te", "trailers")],
                         huffman=False)
    c.raw(frame(HEADERS, 0, 1, block[:20]) + frame(CONTINUATION, 0, 1, block[20:40])
          + frame(CONTINUATION, END_HEADERS, 1, block[40:]))
    c.data(1, grpc_message(b"continued"), end_stream=True)
    seeds["continuation"] = (PREFACE | chunking(4), c)

    seeds["bad_messages"] = (
        PREFACE,
        Client().headers(1).data(1, grpc_message(b"zipped", flag=1), end_stream=True)
        .headers(3).data(3, grpc_message(b"flag", flag=2), end_stream=True)
        .headers(5).data(5, grpc_message(b"truncated")[:8], end_stream=True)
        .raw(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0))))

    # The peer limits of the small-limits configuration, one seed each.
    c = Client().headers(1, "/fuzz.Echo/ClientStream")
    for i in range(4):
        c.raw(frame(PING, 0, 0, b"pingpin" + bytes([48 + i])))
    seeds["tight_ping_flood"] = (PREFACE | TIGHT, c)
    c = Client().headers(1, "/fuzz.Echo/ClientStream")
    for _ in range(4):
        c.data(1, b"")
    seeds["tight_empty_frames"] = (PREFACE | TIGHT, c)
    c = Client()
    for sid in range(1, 13, 2):  # each answered with trailers and our RST_STREAM
        c.headers(sid).data(sid, grpc_message(b"z", flag=1))
    seeds["tight_reset_burst"] = (PREFACE | TIGHT, c)
    c = Client()
    for sid in (1, 3):  # about 1 KiB of responses to a client that reads 32 bytes a turn
        c.headers(sid, "/fuzz.Echo/ServerStream").data(sid, grpc_message(b"\x08" + b"s" * 59), end_stream=True)
    c.headers(5).data(5, grpc_message(b"after the pause"), end_stream=True)
    seeds["tight_slow_reader"] = (PREFACE | TIGHT, c)

    seeds["no_preface_http1"] = (0x00, Client().raw(b"GET / HTTP/1.1\r\nHost: fuzz\r\n\r\n"))
    return {name: bytes([flags]) + c.out for name, (flags, c) in seeds.items()}


def deframer_seeds():
    def d(limit, seed, stream):
        return struct.pack(">H", limit) + bytes([seed]) + stream
    two = grpc_message(b"first") + grpc_message(b"second, longer")
    return {
        "two_messages": d(0xFFFF, 0, two),
        "two_messages_split": d(0xFFFF, 7, two),
        "empty_and_compressed": d(0xFFFF, 1, grpc_message(b"") + grpc_message(b"packed", flag=1)),
        "too_large": d(16, 3, grpc_message(b"x" * 17)),
        "bad_flag": d(0xFFFF, 0, grpc_message(b"bad", flag=2)),
        "partial": d(0xFFFF, 9, grpc_message(b"y" * 300)[:120]),
    }


def simple_seeds():
    return {
        "grpc_timeout_fuzz": {
            "seconds": b"1S", "millis": b"100m", "max_hours": b"99999999H", "zero_nanos": b"0n",
            "micros": b"12u", "minutes": b"5M", "nine_digits": b"123456789n", "lower_s": b"1s",
            "raw_duration": struct.pack("<q", 123456789012345),
        },
        "percent_decoding_fuzz": {
            "plain": b"hello world", "escapes": b"%41%4a%zz%", "utf8": "café 100%".encode(),
            "lone_percent": b"%", "controls": b"\x00\x7f\r\n", "truncated": b"abc%4",
        },
        "base64_fuzz": {
            "empty": b"", "one_unpadded": b"QQ", "one_padded": b"QQ==", "two_padded": b"QUI=",
            "three": b"QUJD", "foobar": b"Zm9vYmFy", "bad_padding": b"Q===", "symbols": b"a+/9",
            "space": b"ab c", "stray_bits": b"QR",
        },
    }


def write(target, files):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(content)


if __name__ == "__main__":
    write("connection_fuzz", connection_seeds())
    write("deframer_fuzz", deframer_seeds())
    for target, files in simple_seeds().items():
        write(target, files)
