"""Abuse suite, header and message sizes: CONTINUATION flood, HPACK bomb, 17 KiB and
600-field header lists (limit 16 KiB) and a 4 GiB length prefix, with a canary.
Run by tests/run_all.sh (BUILD=dir); prints its rows of the table, exits 1 on a failure."""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attacks  # noqa: E402
import harness  # noqa: E402

FLAGS = {"shards": 2}
ATTACKS = ["continuation_flood", "hpack_bomb", "header_17k", "header_600", "length_4g"]

if __name__ == "__main__":
    harness.main("headers", FLAGS, [attacks.ALL[a] for a in ATTACKS])
