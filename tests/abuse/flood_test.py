"""Abuse suite, control-frame floods: PING (reading and non-reading peers), SETTINGS and
empty DATA frames, against the default limits (2 ping strikes, 10 empty frames), with a canary.
Run by tests/run_all.sh (BUILD=dir); prints its rows of the table, exits 1 on a failure."""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attacks  # noqa: E402
import harness  # noqa: E402

FLAGS = {"shards": 2}
ATTACKS = ["ping_flood_reading", "ping_flood_nonreading", "settings_flood", "empty_frame_flood"]

if __name__ == "__main__":
    harness.main("floods", FLAGS, [attacks.ALL[a] for a in ATTACKS])
