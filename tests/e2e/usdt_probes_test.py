# Checks that a built server carries the USDT probes of src/base/probes.h: each probe of
# provider "uringrpc" is present as a stapsdt ELF note with its argument count and a semaphore
# in the .probes section (perf and bpftrace find the probes through exactly these notes).
# Run: BUILD=build /usr/bin/python3 tests/e2e/usdt_probes_test.py
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_report import Report  # noqa: E402

# name -> number of arguments (man/uringrpc-perf.7 documents what they are)
EXPECTED = {
    "conn_accept": 3,
    "conn_close": 3,
    "rpc_start": 2,
    "rpc_end": 4,
    "loop_wakeup": 2,
}
PROVIDER = "uringrpc"


def parse_notes(text):
    """The stapsdt notes of `readelf -n` output, as dicts with provider, name, semaphore, args."""
    notes = []
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("stapsdt"):
            current = {}
            notes.append(current)
        elif current is None:
            continue
        elif line.startswith("Provider:"):
            current["provider"] = line.split(":", 1)[1].strip()
        elif line.startswith("Name:"):
            current["name"] = line.split(":", 1)[1].strip()
        elif line.startswith("Location:"):
            m = re.search(r"Semaphore:\s*(0x[0-9a-fA-F]+)", line)
            current["semaphore"] = int(m.group(1), 16) if m else 0
        elif line.startswith("Arguments:"):
            current["args"] = line.split(":", 1)[1].split()
    return notes


def section_range(binary, name):
    out = subprocess.run(["readelf", "-W", "-S", binary], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == name:
            addr, size = int(fields[3], 16), int(fields[5], 16)
            return addr, addr + size
    return None


def main():
    """One case per expected probe, one for the .probes section, one for probes this test
    does not know; each prints PASS/FAIL with its problems."""
    report = Report()
    build = os.environ.get("BUILD", "build")
    binary = os.path.join(build, "bin", "example-server")
    if not os.path.exists(binary):
        print(f"FAIL: {binary} not built")
        report.record("binary", False)
        return report.finish()
    out = subprocess.run(["readelf", "-n", binary], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    notes = [n for n in parse_notes(out) if n.get("provider") == PROVIDER]
    probes_section = section_range(binary, ".probes")
    counts = {name: sum(1 for n in notes if n.get("name") == name) for name in EXPECTED}
    print(f"{binary}: {len(notes)} {PROVIDER} probe sites: "
          + ", ".join(f"{k}×{v}" for k, v in counts.items()))

    def case(case_id, problems):
        for p in problems:
            print(f"FAIL: {case_id}: {p}")
        if not problems:
            print(f"PASS: {case_id}")
        report.record(case_id, not problems)

    case(".probes section", [] if probes_section else ["no .probes section (semaphores missing)"])
    for name, nargs in EXPECTED.items():
        problems = []
        sites = [n for n in notes if n.get("name") == name]
        if not sites:
            problems.append(f"probe {PROVIDER}:{name} missing")
        for site in sites:
            if len(site.get("args", [])) != nargs:
                problems.append(f"{PROVIDER}:{name}: {len(site.get('args', []))} arguments, expected {nargs}")
            sem = site.get("semaphore", 0)
            if not sem:
                problems.append(f"{PROVIDER}:{name}: no semaphore")
            elif probes_section and not probes_section[0] <= sem < probes_section[1]:
                problems.append(f"{PROVIDER}:{name}: semaphore 0x{sem:x} outside .probes")
        case(f"{PROVIDER}:{name}", problems)
    unknown = sorted({n.get("name") for n in notes} - set(EXPECTED))
    case("no unknown probes",
         [f"probes not covered by this test (add them here and to uringrpc-perf.7): {unknown}"] if unknown else [])
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
