"""Abuse suite, resets: Rapid Reset, MadeYouReset, stream 101 past max_concurrent_streams and
a peer vanishing mid-stream, against abuse-server with its default limits and a canary.
Run by tests/run_all.sh (BUILD=dir); prints its rows of the table, exits 1 on a failure."""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attacks  # noqa: E402
import harness  # noqa: E402

FLAGS = {"shards": 2}
ATTACKS = ["rapid_reset", "made_you_reset", "stream_101", "peer_vanishes"]

if __name__ == "__main__":
    harness.main("resets", FLAGS, [attacks.ALL[a] for a in ATTACKS])
