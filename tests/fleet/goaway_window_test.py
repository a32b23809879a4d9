"""The window a proxy relies on during a drain, on the wire (tests/common/h2wire.py) against
build/bin/interop-server: a call sent on an open connection after SIGTERM, but before the
client has read the GOAWAY notice (and so before it acknowledged the notice's PING), is
served like a call in flight, not refused; the final GOAWAY that follows the PING's ACK
names it among the streams processed. A proxy that reuses a pooled connection in that
window (nginx, HAProxy) cannot always retry a refused call: rolling_restart_test.py."""

import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402
from h2wire import GOAWAY, Conn  # noqa: E402  (tests/common, on the path through fleet)

EMPTY_CALL = "/grpc.testing.TestService/EmptyCall"
NOTICE_LAST_STREAM_ID = (1 << 31) - 1


def raw_frames(buf):
    """(type, stream, payload) of each whole frame in bytes not parsed yet: reading them
    this way sends no PING ACK, which Conn's own parser would."""
    out, i = [], 0
    while len(buf) - i >= 9:
        length = int.from_bytes(buf[i:i + 3], "big")
        if len(buf) - i < 9 + length:
            break
        out.append((buf[i + 3], int.from_bytes(buf[i + 5:i + 9], "big") & 0x7FFFFFFF, bytes(buf[i + 9:i + 9 + length])))
        i += 9 + length
    return out


def case(report, tmp):
    inst = fleet.Instance(tmp, "w", grace_ms=3000).start()
    try:
        c = Conn(inst.port)
        c.handshake()
        first = c.call(EMPTY_CALL, b"")
        r = c.read_response(first)
        report.record("call-before-stop-answered", r.grpc_status() == 0)

        inst.proc.send_signal(signal.SIGTERM)
        # Wait for the notice without parsing (no PING ACK goes out).
        notice = None
        end = time.monotonic() + 5
        while notice is None and time.monotonic() < end:
            c._recv(0.05)
            notice = next((p for t, s, p in raw_frames(c.buf) if t == GOAWAY), None)
        last_id = int.from_bytes(notice[0:4], "big") & 0x7FFFFFFF if notice else None
        print("  GOAWAY notice after SIGTERM: last-stream-id %s" % last_id, flush=True)
        report.record("notice-has-last-stream-id-2^31-1", last_id == NOTICE_LAST_STREAM_ID)

        # The proxy's race: a call on this connection before it read the notice.
        late = c.call(EMPTY_CALL, b"")
        r = c.read_response(late)  # parses the buffered frames now: PING ACK, then the final GOAWAY
        print("  call sent in the window (stream %d): %s" % (late, r.describe()), flush=True)
        report.record("call-in-the-window-served", r.rst is None and r.grpc_status() == 0)
        c.pump(lambda: c.goaway is not None and c.goaway[0] != NOTICE_LAST_STREAM_ID, 5)
        print("  final GOAWAY: %s" % (c.goaway,), flush=True)
        report.record("final-goaway-names-it-processed",
                      c.goaway is not None and late <= c.goaway[0] < NOTICE_LAST_STREAM_ID)
        report.record("connection-closed-after-final-goaway", c.wait_closed(5))
        report.record("server-exits-zero", inst.proc.wait(timeout=10) == 0)
    finally:
        inst.kill()


def main():
    report = fleet.Report()
    tmp = tempfile.mkdtemp(prefix="fleet-goaway-")
    try:
        case(report, tmp)
    except Exception as e:
        print("  %r" % (e,), flush=True)
        report.record("goaway-window", False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fleet.exit_with(report)


if __name__ == "__main__":
    main()
