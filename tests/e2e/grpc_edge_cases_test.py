# gRPC-over-HTTP/2 protocol edge cases with exact answers (HTTP status, grpc-status,
# grpc-accept-encoding), sent over a raw socket to seed-server so that values no real client
# would send can be tried. Reserved "grpc-" keys in the handler API are in
# reserved_metadata_test.cc. Run: BUILD=build /usr/bin/python3 tests/e2e/grpc_edge_cases_test.py
import os
import sys
import time
import urllib.parse
import zlib

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_harness import (  # noqa: E402  (puts tests/common on the path too)
    BLOCK_BRIEFLY, SEED_REQUEST, SEED_RESPONSE, UNARY, main_with, raw_conn)
from h2wire import block, grpc_fields, grpc_message  # noqa: E402

OK, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL = "0", "4", "8", "12", "13"


def call(port, fields, body=None, limit=5.0):
    """One request on a fresh connection; HEADERS then (if any) the body with END_STREAM."""
    c = raw_conn(port)
    try:
        c.handshake()
        c.headers(1, block(fields), end_stream=body is None)
        if body is not None:
            c.data(1, body, end_stream=True)
        return c.read_response(1, limit)
    finally:
        c.close()


def expect(http_status, grpc_status, fields, body=grpc_message(SEED_REQUEST), extra_check=None):
    """Case: a complete response (END_STREAM, no reset) with this :status and grpc-status
    (None: not asserted)."""
    def run(port):
        r = call(port, fields, body)
        problems = []
        if r.rst is not None or not r.ended:
            problems.append("not a complete response")
        if r.header(":status") != http_status:
            problems.append(f":status {r.header(':status')} != {http_status}")
        if grpc_status is not None and r.trailer("grpc-status") != grpc_status:
            problems.append(f"grpc-status {r.trailer('grpc-status')} != {grpc_status}")
        if extra_check:
            problems += extra_check(r)
        return not problems, r.describe() + ("; " + "; ".join(problems) if problems else "")
    return run


def served_ok(fields):
    def check(r):
        return [] if r.data == grpc_message(SEED_RESPONSE) else ["response message missing"]
    return expect("200", OK, fields, extra_check=check)


def with_header(name, value, path=UNARY):
    return grpc_fields(path, extra=[(name, value)])


def _gzip(data):
    c = zlib.compressobj(wbits=31)
    return c.compress(data) + c.flush()


def zlib_bomb(enc, mebibytes):
    """`mebibytes` MiB of zeros, gzip or zlib format, compressed one MiB at a time."""
    c = zlib.compressobj(9, wbits=31 if enc == "gzip" else 15)
    zeros = bytes(1 << 20)
    return b"".join(c.compress(zeros) for _ in range(mebibytes)) + c.flush()


def replace(fields, name, value):
    """The gRPC request fields with `name` set to `value` (None: left out)."""
    out = [f for f in fields if f[0] != name]
    if value is None:
        return out
    # Pseudo-headers must come first (RFC 9113 8.3), or the request is malformed HTTP/2.
    return [(name, value)] + out if name.startswith(":") else out + [(name, value)]


def deadlines(port):
    """Every valid grpc-timeout form, each on its own stream of one connection, against a
    handler that sleeps 2 s: each must end when its own deadline says, never earlier."""
    # form -> (expected grpc-status, earliest end in s, latest end in s)
    forms = {"100m": (DEADLINE_EXCEEDED, 0.09, 1.5), "99999999n": (DEADLINE_EXCEEDED, 0.09, 1.5),
             "100000u": (DEADLINE_EXCEEDED, 0.09, 1.5), "1S": (DEADLINE_EXCEEDED, 0.95, 1.9),
             "0m": (DEADLINE_EXCEEDED, 0.0, 1.0), "1H": (OK, 1.9, 6.0), "1M": (OK, 1.9, 6.0),
             "99999999S": (OK, 1.9, 6.0)}
    c = raw_conn(port)
    try:
        c.handshake()
        streams = {}
        for i, form in enumerate(forms):
            s = 1 + 2 * i
            streams[s] = form
            c.headers(s, block(with_header("grpc-timeout", form, BLOCK_BRIEFLY)))
            c.data(s, grpc_message(SEED_REQUEST), end_stream=True)
        got = c.read_responses(list(streams), limit=8.0)
    finally:
        c.close()
    problems, seen = [], []
    for s, form in streams.items():
        want, earliest, latest = forms[form]
        r = got[s]
        status = r.trailer("grpc-status")
        took = r.times.get("end")
        seen.append(f"{form}: grpc-status={status} after {took:.2f}s" if took is not None
                    else f"{form}: {r.describe()}")
        if status != want:
            problems.append(f"{form}: grpc-status {status}, want {want}")
        elif took is None or not earliest <= took <= latest:
            problems.append(f"{form}: ended after {took}s, want {earliest}-{latest}s")
    return not problems, "; ".join(seen) + (" | " + "; ".join(problems) if problems else "")


def grpc_message_check(expected_fragment):
    """grpc-message on the wire: only 0x20-0x7E, '%' escaped, and it decodes (percent
    decoding, never failing) to text containing `expected_fragment`."""
    def check(r):
        msg = r.trailer("grpc-message")
        if msg is None:
            return ["no grpc-message"]
        problems = []
        raw = msg.encode("latin-1")
        if any(b < 0x20 or b > 0x7E for b in raw):
            problems.append(f"grpc-message has bytes outside 0x20-0x7E: {raw!r}")
        # Every '%' must start an escape of two hex digits: a bare '%' was not encoded.
        i = raw.find(b"%")
        while i >= 0:
            if not all(chr(ch) in "0123456789ABCDEFabcdef" for ch in raw[i + 1:i + 3]) or len(raw[i + 1:i + 3]) < 2:
                problems.append(f"unescaped '%' at offset {i} of {raw!r}")
                break
            i = raw.find(b"%", i + 3)
        decoded = urllib.parse.unquote_to_bytes(msg)
        if expected_fragment not in decoded:
            problems.append(f"decoded grpc-message {decoded!r} lacks {expected_fragment!r}")
        return problems
    return check


def cases(t):
    base = grpc_fields(UNARY)

    # content-type: application/grpc, optionally +subtype or ;parameters. Anything else is
    # not gRPC: HTTP 415.
    for i, ct in enumerate(["application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8",
                            "application/grpc+proto; codec=x"]):
        t.run(f"ct/ok{i + 1}", f"content-type {ct!r} is gRPC: served", served_ok(replace(base, "content-type", ct)))
    for i, ct in enumerate(["text/plain", "application/json", "application/grpcx", "application/grpc-web",
                            "application/grp", ""]):
        t.run(f"ct/415-{i + 1}", f"content-type {ct!r} -> HTTP 415",
              expect("415", None, replace(base, "content-type", ct)))
    t.run("ct/415-7", "no content-type -> HTTP 415", expect("415", None, replace(base, "content-type", None)))

    # :method other than POST -> 405 with grpc-status INTERNAL.
    for i, m in enumerate(["GET", "PUT", "DELETE"]):
        t.run(f"method/{i + 1}", f":method {m} -> HTTP 405, grpc-status INTERNAL",
              expect("405", INTERNAL, replace(base, ":method", m), body=None if m == "GET" else grpc_message(b"")))

    # te: trailers missing -> INTERNAL (a te other than "trailers" is malformed HTTP/2; see
    # h2_conformance_test.py 8.1.2.2/6).
    t.run("te/1", "no te: trailers -> grpc-status INTERNAL", expect("400", INTERNAL, replace(base, "te", None)))

    # grpc-timeout: more than 8 digits, a bad or missing unit, empty -> 400 + INTERNAL,
    # never a call without a deadline.
    for i, v in enumerate(["123456789S", "1x", "S", "", "1s", "-1S", "+1S", "1.5S", "1 S", "0x1S", "1SS",
                           "\xc3\xa91S"]):
        t.run(f"timeout/bad{i + 1}", f"grpc-timeout {v!r} -> HTTP 400, grpc-status INTERNAL",
              expect("400", INTERNAL, with_header("grpc-timeout", v)))
    t.run("timeout/valid", "valid grpc-timeout forms are enforced (100m 99999999n 100000u 1S 0m 1H 1M 99999999S)",
          deadlines)

    # -bin metadata: padded and unpadded base64 both accepted; invalid base64 -> 400 + INTERNAL.
    for i, v in enumerate(["AAE=", "AAE", "AA==", "AA", "AAEC", "", "+/+/"]):
        t.run(f"bin/ok{i + 1}", f"x-data-bin {v!r} is valid base64: served", served_ok(with_header("x-data-bin", v)))
    for i, v in enumerate(["A", "AAE==", "AA=A", "!!!!", "AAE=AAE=", "A===", "AA AA", "-_-_"]):
        t.run(f"bin/bad{i + 1}", f"x-data-bin {v!r} is not base64 -> HTTP 400, grpc-status INTERNAL",
              expect("400", INTERNAL, with_header("x-data-bin", v)))

    # Message flags and compression.
    t.run("flag/1", "compressed flag 1 without grpc-encoding -> INTERNAL",
          expect("200", INTERNAL, base, body=grpc_message(SEED_REQUEST, flag=1)))
    t.run("flag/2", "compressed flag 1 with grpc-encoding identity -> INTERNAL",
          expect("200", INTERNAL, with_header("grpc-encoding", "identity"), body=grpc_message(SEED_REQUEST, flag=1)))
    for i, flag in enumerate([0x80, 0xFF, 0x03]):
        t.run(f"flag/{i + 3}", f"message flag byte 0x{flag:02x} -> INTERNAL",
              expect("200", INTERNAL, base, body=grpc_message(SEED_REQUEST, flag=flag)))

    def accept_encoding(used):
        def check(r):
            v = r.header("grpc-accept-encoding")
            if v is None:
                return ["no grpc-accept-encoding"]
            listed = [e.strip() for e in v.split(",")]
            problems = [] if listed == ["identity", "deflate", "gzip"] else [f"grpc-accept-encoding {v!r}"]
            # compression.md: the list must not contain the refused encoding, and the
            # description names the supported ones.
            if used in listed:
                problems.append(f"grpc-accept-encoding lists the refused {used!r}")
            msg = urllib.parse.unquote(r.trailer("grpc-message") or "")
            if "identity,deflate,gzip" not in msg:
                problems.append(f"grpc-message {msg!r} does not name the accepted encodings")
            return problems
        return check
    for i, enc in enumerate(["x-unknown-codec", "snappy", "br", "GZIP"]):
        t.run(f"encoding/{i + 1}", f"grpc-encoding {enc} -> UNIMPLEMENTED with grpc-accept-encoding",
              expect("200", UNIMPLEMENTED, with_header("grpc-encoding", enc), extra_check=accept_encoding(enc)))
    t.run("encoding/5", "grpc-encoding identity with uncompressed messages is served",
          served_ok(with_header("grpc-encoding", "identity")))
    # gzip and deflate (gRPC's deflate is the zlib format) are accepted, per message.
    packers = {"gzip": _gzip,
               "deflate": lambda b: zlib.compress(b)}
    for i, (enc, pack) in enumerate(packers.items()):
        t.run(f"compressed/{i + 1}", f"a {enc} message with grpc-encoding {enc} is inflated and served",
              expect("200", OK, with_header("grpc-encoding", enc), body=grpc_message(pack(SEED_REQUEST), flag=1),
                     extra_check=lambda r: [] if r.data == grpc_message(SEED_RESPONSE) else ["response missing"]))
        t.run(f"compressed/{i + 3}", f"grpc-encoding {enc} with an uncompressed message (flag 0) is served",
              served_ok(with_header("grpc-encoding", enc)))
        t.run(f"compressed/{i + 5}", f"a corrupt {enc} message -> INTERNAL",
              expect("200", INTERNAL, with_header("grpc-encoding", enc),
                     body=grpc_message(pack(SEED_REQUEST)[:-3] + b"xyz", flag=1)))
        t.run(f"compressed/{i + 7}", f"a truncated {enc} message -> INTERNAL",
              expect("200", INTERNAL, with_header("grpc-encoding", enc),
                     body=grpc_message(pack(SEED_REQUEST * 20)[:10], flag=1)))
        # 12 MiB of zeros in ~12 KiB (one DATA frame): 3x the 4 MiB limit once inflated.
        bomb = zlib_bomb(enc, 12)
        t.run(f"compressed/{i + 9}", f"a {enc} bomb (12 KiB inflating to 12 MiB) -> RESOURCE_EXHAUSTED",
              expect("200", RESOURCE_EXHAUSTED, with_header("grpc-encoding", enc), body=grpc_message(bomb, flag=1)))

    # grpc-message: the server's own messages quote request values; bytes outside
    # 0x20-0x7E and '%' must be percent-encoded on the wire.
    t.run("message/1", "grpc-message escapes '%', UTF-8 and TAB in a quoted grpc-timeout",
          expect("400", INTERNAL, with_header("grpc-timeout", "1%\xc3\xa9\t9"),
                 extra_check=grpc_message_check(b"1%\xc3\xa9\t9")))
    t.run("message/2", "grpc-message escapes a quoted content-type with '%' and high bytes",
          expect("415", None, replace(base, "content-type", "text/100%\xff"),
                 extra_check=grpc_message_check(b"text/100%\xff")))


if __name__ == "__main__":
    started = time.monotonic()
    rc = main_with(cases)
    print(f"grpc_edge_cases_test.py: {time.monotonic() - started:.1f} s", flush=True)
    sys.exit(rc)
