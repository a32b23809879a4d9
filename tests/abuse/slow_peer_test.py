"""Abuse suite, slow and broken peers: a window-0 reader of 100 x 1 MiB, a truncated
preface, garbage and a slowloris on the TLS port, 1,000 connections opened and dropped.
Timeouts lowered by flag so the test stays short: handshake 1.5 s, stalled stream 3 s.
Run by tests/run_all.sh (BUILD=dir); prints its rows of the table, exits 1 on a failure."""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attacks  # noqa: E402
import harness  # noqa: E402

FLAGS = {"shards": 2, "handshake-timeout-ms": 1500, "stalled-stream-timeout-ms": 3000}
ATTACKS = ["slow_reader", "truncated_preface", "tls_garbage", "slowloris_tls", "connection_churn"]

if __name__ == "__main__":
    harness.main("slow peers", FLAGS, [attacks.ALL[a] for a in ATTACKS], tls=True)
