"""Rolling restart under load, behind nginx and behind HAProxy (examples/production/):
while grpcio clients drive steady unary, server-streaming and bidi calls through the
proxy, each of the three instances in turn is drained (SIGTERM: listener closed, double
GOAWAY, grace; see fleet.Instance.drain) and started again on its port, and the next one
is drained only once the proxy sends calls to the restarted one. Zero calls fail, and the
number of calls sent equals the number answered correctly."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402

# Bounds: each proxy's run is about 3 drains (each as long as the longest call in flight,
# ~0.5 s: IN_FLIGHT_MS) plus the proxy noticing each restarted instance (nginx: fail_timeout 1 s;
# HAProxy: two 300 ms checks). MAX_SECONDS stops the load whatever happens.
MAX_SECONDS = 40
SETTLE_SECONDS = 0.5  # load before the first drain and after the last restart


# A long server stream: its first response at once, the rest over 450 ms, so that it is
# still running when its instance drains and must be allowed to finish (grace 2 s).
IN_FLIGHT_MS = (0, 150, 150, 150)


def calls_in_flight_on(client, served_by, attempts=20):
    """Opens long streams through the proxy until one runs on `served_by` (the proxy
    picks the instance; the first response says which). Returns [(instance, reader)]."""
    streams = []
    for _ in range(attempts):
        streams.append(client.start_stream(IN_FLIGHT_MS))
        if streams[-1][0] == served_by:
            return streams
    raise AssertionError("no stream of %d through the proxy reached %s" % (attempts, served_by))


def rolling_restart(report, f, proxy):
    client = fleet.Client(proxy.target(), f.pb)
    probe = fleet.Client(proxy.target(), f.pb)  # its own connection: the load's is not waited on
    load = fleet.Load(client, per_kind=2, max_seconds=MAX_SECONDS).start()
    ok = True
    in_flight_ok = True
    try:
        time.sleep(SETTLE_SECONDS)
        for inst in f.instances:
            old = inst.served_by
            streams = calls_in_flight_on(probe, old)
            took = inst.drain()
            code = inst.exit_codes[-1]
            whole = 0
            for who, reader in streams:
                reader.join(timeout=10)
                if reader.result == [10] * len(IN_FLIGHT_MS):
                    whole += 1
                else:
                    print("  %s: a stream in flight on %s when it drained ended with %r" %
                          (proxy.name, who, reader.result), flush=True)
                    in_flight_ok = False
            print("  %s: %d long streams in flight during the drain, %d of them on %s; %d answered in full" %
                  (proxy.name, len(streams), sum(w == old for w, _ in streams), old, whole), flush=True)
            inst.start()
            calls = fleet.wait_served_by(probe, inst.served_by, timeout=10)
            print("  %s: drained %s in %.2f s (exit %d; its health Watch saw %s), %s answers after %d probe calls; %s" %
                  (proxy.name, old, took, code, " -> ".join(inst.health_seen), inst.served_by, calls,
                   load.summary()), flush=True)
            if code != 0:
                ok = False
        time.sleep(SETTLE_SECONDS)
    except AssertionError as e:
        print("  %s: %s" % (proxy.name, e), flush=True)
        ok = False
    finally:
        load.stop()
        client.close()
        probe.close()
    print("  %s: %s" % (proxy.name, load.summary()), flush=True)
    for failure in load.failures[:10]:
        print("    failed: %s" % failure, flush=True)
    sent, answered = load.total(load.sent), load.total(load.answered)
    # Every kind ran, and each of the restarted instances answered load calls.
    served_new = {i.served_by for i in f.instances} <= set(load.served)
    report.record("%s/rolling-restart-zero-failed-calls" % proxy.name, ok and not load.failures)
    report.record("%s/rolling-restart-calls-in-flight-finish-within-grace" % proxy.name, ok and in_flight_ok)
    report.record("%s/rolling-restart-sent-equals-answered" % proxy.name,
                  sent == answered and all(load.answered[k] > 0 for k in load.KINDS))
    report.record("%s/rolling-restart-load-reaches-restarted-instances" % proxy.name, served_new)
    if proxy.name == "nginx":
        # What nginx saw of the drains: connections refused (retried on another instance).
        log = proxy.log_tail(100000)
        print("  nginx error.log: %d refused connects (retried), %d calls refused by GOAWAY, %d by RST_STREAM" %
              (log.count("Connection refused"), log.count("upstream sent goaway"),
               log.count("upstream rejected request")), flush=True)
    if not (ok and served_new and not load.failures):
        print(proxy.log_tail(), flush=True)


def main():
    report = fleet.Report()
    missing = fleet.have_proxies()
    if missing:
        print("not installed: %s (.ci/install-deps installs them)" % " ".join(missing))
        report.skip("rolling-restart")
        fleet.exit_with(report)
    for proxy_class in (fleet.Nginx, fleet.HAProxy):
        # A fresh fleet per proxy: each run starts from instances of generation 1.
        f = fleet.Fleet(grace_ms=2000)
        try:
            f.start_instances()
            proxy = proxy_class(f.tmp, f.backends())
            print("== %s on %s, backends %s" % (proxy.name, proxy.target(), f.backends()), flush=True)
            f.add(proxy)
            rolling_restart(report, f, proxy)
        except Exception as e:
            print("  %s: %r" % (proxy_class.name, e), flush=True)
            report.record("%s/rolling-restart" % proxy_class.name, False)
        finally:
            f.close()
    fleet.exit_with(report)


if __name__ == "__main__":
    main()
