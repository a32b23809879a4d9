"""The soak (`make soak SOAK_SECONDS=N`): rotates every attack of attacks.py against one
abuse-server while the canary runs, and prints per interval (a minute, or N/6 s for short
runs) the server's open fds, RSS and the canary's p99. Fails if RSS grows more than
1 MiB/min from the first row after the warm-up (a third of the run, at least one
rotation) to the last, if fds grow, or if the server dies. Attacks whose outcome was not the expected one are counted, not fatal."""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attacks  # noqa: E402
import harness  # noqa: E402

# One server for every attack: the timeouts the slow-peer attacks wait for are lowered
# as in slow_peer_test.py; everything else is at its ServerOptions default.
FLAGS = {"shards": 2, "handshake-timeout-ms": 1500, "stalled-stream-timeout-ms": 3000}
RSS_GROWTH_KIB_PER_MIN = 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=0, help="seconds per row (default 60, or N/6 if N < 600)")
    args = ap.parse_args()
    interval = args.interval or (60.0 if args.seconds >= 600 else max(10.0, args.seconds / 6))
    rotation = list(attacks.ALL.values())
    suite = harness.Suite("soak", FLAGS, tls=True)
    server, canary = suite.server, suite.canary
    rows = []
    attack_runs, attack_failures, failure_kinds = 0, {}, {}
    started = time.monotonic()
    row_start = started
    i = 0
    print("| minute | open fds | RSS MiB | canary p99 ms | canary ok | attacks run | attack rows failing a check |", flush=True)
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    try:
        while time.monotonic() - started < args.seconds and server.alive():
            attack = rotation[i % len(rotation)]
            i += 1
            row = suite.run(attack, quiet=True)
            attack_runs += 1
            if row.failures:
                attack_failures[attack.name] = attack_failures.get(attack.name, 0) + 1
                # Which check failed: the attack's own outcome, or only the canary/RSS bounds.
                kind = "outcome" if row.outcome in ("FAILED", "ERROR") else "bounds"
                failure_kinds[kind] = failure_kinds.get(kind, 0) + 1
            now = time.monotonic()
            if now - row_start >= interval or now - started >= args.seconds:
                time.sleep(1.0)  # connections of the last attack finish closing
                calls = canary.window(row_start, now)
                ok = sum(1 for c in calls if c[2] == "OK")
                r = (round((time.monotonic() - started) / 60.0, 2), server.fd_count(), server.rss_kib(),
                     harness.p99([c[1] for c in calls]), ok, len(calls), attack_runs, sum(attack_failures.values()))
                rows.append(r)
                print("| %.2f | %d | %.1f | %.1f | %d/%d | %d | %d |" % (r[0], r[1], r[2] / 1024.0, r[3], r[4], r[5], r[6], r[7]),
                      flush=True)
                row_start = time.monotonic()
    finally:
        died = not server.alive()
        suite.close()
    failures = []
    if died:
        failures.append("server died (exit %s): %s" % (server.proc.returncode, server.stderr_tail()))
    # Growth is judged after a warm-up of a third of the run (and at least one rotation):
    # while every attack runs its first few times, the allocator's per-thread arenas fill
    # with fragments up to a plateau (about 5 minutes in the recorded run). A leak keeps
    # growing past it. The whole-run figure is printed as well.
    warm = next((k for k, r in enumerate(rows) if r[6] >= len(rotation) and r[0] * 60 >= args.seconds / 3), None)
    warmed = warm is not None and warm < len(rows) - 1
    if len(rows) >= 2:
        first, last = rows[warm if warmed else 0], rows[-1]
        whole = (last[2] - rows[0][2]) / max(last[0] - rows[0][0], 1e-9)
        print("growth judged from the row at minute %.2f (%s); from the first row: %+.2f MiB/min"
              % (first[0], "after the warm-up" if warmed else "no row after a warm-up: from the first", whole / 1024.0))
        minutes = max(last[0] - first[0], 1e-9)
        growth = (last[2] - first[2]) / minutes
        print("RSS %.1f -> %.1f MiB over %.1f min: %+.2f MiB/min (bound %.0f MiB/min); fds %d -> %d (bound: no growth)"
              % (first[2] / 1024.0, last[2] / 1024.0, minutes, growth / 1024.0, RSS_GROWTH_KIB_PER_MIN / 1024.0, first[1], last[1]))
        if not warmed:
            # Growth during the warm-up is the allocator filling up, not a verdict on leaks.
            failures.append("run too short to judge RSS growth: no row after the warm-up (one rotation, "
                            "about a minute, and a third of the run); use SOAK_SECONDS=240 or more")
        elif growth > RSS_GROWTH_KIB_PER_MIN:
            failures.append("RSS grew %.2f MiB/min" % (growth / 1024.0))
        if last[1] > first[1]:
            failures.append("open fds grew from %d to %d" % (first[1], last[1]))
    else:
        failures.append("fewer than two rows: run longer (SOAK_SECONDS)")
    total_calls = sum(r[5] for r in rows)
    total_ok = sum(r[4] for r in rows)
    print("canary: %d/%d OK; %d attacks run; attack rows failing a check: %s (wrong outcome: %d, only canary p99 or RSS over the bound: %d)" % (
        total_ok, total_calls, attack_runs, ", ".join("%s x%d" % kv for kv in sorted(attack_failures.items())) or "none",
        failure_kinds.get("outcome", 0), failure_kinds.get("bounds", 0)))
    for f in failures:
        print("SOAK FAILED: " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
