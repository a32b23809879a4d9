# examples/greeter/greeter.service and greeter.socket checked by systemd's own tools:
# `systemd-analyze verify` passes, `systemd-analyze security --offline=true` rates the
# service's exposure at most 2.0, and its SystemCallFilter= keeps io_uring's three calls.
# Run: BUILD=build /usr/bin/python3 tests/e2e/systemd_units_test.py
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_report import Report, Skip  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
EXAMPLE_SERVER = os.path.join(BUILD, "bin", "example-server")


def units_verify_and_are_sandboxed():
    """examples/greeter/greeter.{service,socket}: `systemd-analyze verify` passes (the units
    are copied with ExecStart= pointing at the built binary, which verify wants to exist),
    `systemd-analyze security --offline=true` rates the service's exposure at most 2.0,
    and its SystemCallFilter= keeps io_uring_setup, io_uring_enter and io_uring_register."""
    if not shutil.which("systemd-analyze"):
        raise Skip()
    problems = []
    units = os.path.join(ROOT, "examples", "greeter")
    installed = "/usr/local/bin/uringrpc-example-server"
    with tempfile.TemporaryDirectory(prefix="uringrpc-units-") as d:
        for name in ("greeter.service", "greeter.socket"):
            with open(os.path.join(units, name)) as f:
                text = f.read()
            if name == "greeter.service" and f"ExecStart={installed} " not in text:
                problems.append(f"greeter.service does not start {installed}")
            with open(os.path.join(d, name), "w") as f:
                f.write(text.replace(installed, EXAMPLE_SERVER))
        v = subprocess.run(["systemd-analyze", "verify", "--man=no", "greeter.socket", "greeter.service"], cwd=d,
                           capture_output=True, text=True, timeout=60)
        if v.returncode != 0 or v.stdout.strip() or v.stderr.strip():
            problems.append(f"systemd-analyze verify: exit {v.returncode}: {v.stdout.strip()} {v.stderr.strip()}")
        sec = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20", "greeter.service"],
                             cwd=d, capture_output=True, text=True, timeout=60)
        last = [l for l in sec.stdout.splitlines() if "Overall exposure level" in l]
        try:
            exposure = float(last[0].split(":")[1].split()[0])
        except (IndexError, ValueError):
            return problems + [f"no exposure level in: {sec.stdout[-300:]} {sec.stderr[-300:]}"]
        print(f"  greeter.service exposure {exposure}")
        if sec.returncode != 0 or exposure > 2.0:
            problems.append(f"exposure {exposure} (exit {sec.returncode}), want at most 2.0")
    # The filter as systemd expands it: every allow-list entry, minus the deny-lists.
    with open(os.path.join(units, "greeter.service")) as f:
        filters = [l.split("=", 1)[1].split() for l in f if l.startswith("SystemCallFilter=")]

    def expand(group):
        out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True,
                             timeout=60).stdout.split()
        calls = set()
        for word in out:
            if word.startswith("@") and word != group:
                calls |= expand(word)
            elif word.isidentifier():
                calls.add(word)
        return calls

    allowed, denied = set(), set()
    for entries in filters:
        deny = entries[0].startswith("~")
        for e in entries:
            e = e.lstrip("~")
            calls = expand(e) if e.startswith("@") else {e}
            (denied if deny else allowed).update(calls)
    for call_name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        if call_name not in allowed or call_name in denied:
            problems.append(f"SystemCallFilter= does not keep {call_name}")
    return problems


def main():
    report = Report()
    name = "greeter.service and greeter.socket verify; exposure at most 2.0; io_uring allowed"
    try:
        problems = units_verify_and_are_sandboxed()
    except Skip:
        print(f"SKIP: {name} (no systemd-analyze)")
        report.skip(name)
        return report.finish()
    for p in problems:
        print(f"FAIL: {name}: {p}")
    if not problems:
        print(f"PASS: {name}")
    report.record(name, not problems)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
