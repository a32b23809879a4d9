"""max_connection_age rebalancing long-lived clients after a scale-out, behind HAProxy's L4
(TCP) front of examples/production/haproxy.cfg.template, where each client connection is
pinned to one instance (balance leastconn). Six grpcio clients, each on one long-lived
connection, call through it while only instance a runs; then b and c start. Without
max_age every call keeps going to a (the control case); with max_age 1 s (±10% jitter)
the aged connections get a GOAWAY, the clients reconnect, and their new connections land
on b and c: all three serve calls in the last second, and no call fails in either case."""

import os
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402

CLIENTS = 6
MAX_AGE_MS = 1000
WARMUP_S = 0.5      # calls on a alone before the scale-out
CHECKS_S = 1.0      # HAProxy marks b and c up after two 300 ms checks
WINDOW_S = 3.0      # observed after the scale-out: about three max_age periods
LAST_S = 1.0        # "where calls land now": the window's last second


class Caller:
    """One client, one channel (one connection at a time), unary calls every 10 ms;
    remembers (time, instance) of each answer and every failure."""

    def __init__(self, target, pb):
        # Its own connection: grpcio channels alike in one process share one by default.
        self.client = fleet.Client(target, pb, options=[("grpc.use_local_subchannel_pool", 1)])
        self.answers = []
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        end = time.monotonic() + 30  # bound, whatever the test does
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                self.answers.append((time.monotonic(), self.client.unary(size=16)))
            except (grpc.RpcError, AssertionError) as e:
                self.failures.append(repr(e))
            self.stop.wait(0.01)


def run_case(report, with_age):
    label = "max-age-%dms" % MAX_AGE_MS if with_age else "no-max-age"
    extra = ["--max_connection_age_ms", str(MAX_AGE_MS), "--max_connection_age_grace_ms", "5000"] if with_age else []
    f = fleet.Fleet(grace_ms=1000, extra=extra)
    a, b, c = f.instances
    # b and c are not running yet; HAProxy's config names their ports already.
    b.port, c.port = fleet.free_port(), fleet.free_port()
    callers = []
    try:
        a.start()
        proxy = f.add(fleet.HAProxy(f.tmp, f.backends()))
        time.sleep(CHECKS_S)  # b and c are marked down before any client connects
        callers = [Caller(proxy.target_l4(), f.pb) for _ in range(CLIENTS)]
        for cl in callers:
            cl.thread.start()
        time.sleep(WARMUP_S)
        b.start()
        c.start()
        t_scale = time.monotonic()
        time.sleep(CHECKS_S + WINDOW_S)
    finally:
        for cl in callers:
            cl.stop.set()
        for cl in callers:
            cl.thread.join(timeout=10)
            cl.client.close()
        f.close()
    t_end = t_scale + CHECKS_S + WINDOW_S
    before = {w for cl in callers for t, w in cl.answers if t < t_scale}
    last = {}
    for cl in callers:
        for t, w in cl.answers:
            if t >= t_end - LAST_S:
                last[w] = last.get(w, 0) + 1
    failures = [x for cl in callers for x in cl.failures]
    # When each client first reached a new instance, after the scale-out: spread by the jitter.
    moved = []
    for cl in callers:
        for t, w in cl.answers:
            if t >= t_scale and w != a.served_by:
                moved.append(round(t - t_scale, 2))
                break
    print("  %s: before the scale-out %s; last %.1f s: %s; clients' first call on b or c at +%s s; "
          "%d calls, %d failed" % (label, sorted(before), LAST_S, dict(sorted(last.items())), sorted(moved),
                                   sum(len(cl.answers) for cl in callers), len(failures)), flush=True)
    for x in failures[:5]:
        print("    failed: %s" % x, flush=True)
    report.record("%s/only-a-before-scale-out" % label, before == {a.served_by})
    report.record("%s/no-failed-calls" % label, not failures and all(cl.answers for cl in callers))
    if with_age:
        report.record("%s/rebalanced-onto-all-three" % label, set(last) == {a.served_by, b.served_by, c.served_by})
    else:
        # The control: without max_age nothing moves a pinned connection.
        report.record("%s/stays-on-a" % label, set(last) == {a.served_by})


def main():
    report = fleet.Report()
    if "haproxy" in fleet.have_proxies():
        print("haproxy is not installed (.ci/install-deps installs it)")
        report.skip("connection-age")
        fleet.exit_with(report)
    for with_age in (False, True):
        try:
            run_case(report, with_age)
        except Exception as e:
            print("  %r" % (e,), flush=True)
            report.record("max-age=%s" % with_age, False)
    fleet.exit_with(report)


if __name__ == "__main__":
    main()
