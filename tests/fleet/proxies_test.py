"""Three uringrpc instances behind nginx (grpc_pass) and behind HAProxy (h2 to the
backends), configured by examples/production/: through each proxy the real gRPC C++ client
(build/tests/interop-tests, URINGRPC_INTEROP_TARGET) gets every standard interop case
right, and calls reach all three instances (their x-served-by headers)."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402


def interop_cases(report, proxy, tmp):
    """Runs the h2c interop cases against the proxy; records each as proxy/Case."""
    xml = os.path.join(tmp, "%s-interop.xml" % proxy.name)
    binary = os.path.join(fleet.build_dir(), "tests", "interop-tests")
    env = dict(os.environ, URINGRPC_INTEROP_TARGET=proxy.target())
    run = subprocess.run([binary, "--gtest_filter=Transports/Interop.*/h2c", "--gtest_output=xml:" + xml],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    cases = 0
    if os.path.exists(xml):
        for case in ET.parse(xml).getroot().iter("testcase"):
            cases += 1
            ok = case.find("failure") is None and case.find("error") is None
            name = "%s/%s" % (proxy.name, case.get("name").split("/")[0])
            print("  %-60s %s" % (name, "ok" if ok else "FAILED"), flush=True)
            report.record(name, ok)
    # Every case ran (18 named ones and two more), and the binary agreed with its report.
    if cases < 18 or run.returncode != 0:
        print(run.stdout.decode(errors="replace")[-4000:], flush=True)
        print(proxy.log_tail(), flush=True)
        report.record("%s/interop-run-complete" % proxy.name, False)


def reaches_all_three(report, proxy, f):
    name = "%s/calls-reach-all-three-instances" % proxy.name
    client = fleet.Client(proxy.target(), f.pb)
    served = {}
    try:
        for _ in range(30):
            who = client.unary()
            served[who] = served.get(who, 0) + 1
    finally:
        client.close()
    want = {i.served_by for i in f.instances}
    ok = set(served) == want
    print("  %s: 30 calls answered by %s" % (name, dict(sorted(served.items()))), flush=True)
    report.record(name, ok)


def main():
    report = fleet.Report()
    missing = fleet.have_proxies()
    if missing:
        print("not installed: %s (.ci/install-deps installs them)" % " ".join(missing))
        report.skip("proxies")
        fleet.exit_with(report)
    f = fleet.Fleet()
    try:
        f.start_instances()
        for proxy_class in (fleet.Nginx, fleet.HAProxy):
            proxy = proxy_class(f.tmp, f.backends())
            print("== %s on %s, backends %s" % (proxy.name, proxy.target(), f.backends()), flush=True)
            try:
                f.add(proxy)
                interop_cases(report, proxy, f.tmp)
                reaches_all_three(report, proxy, f)
            except Exception as e:  # a proxy that failed to start or a call that broke
                print("  %s: %r\n%s" % (proxy.name, e, proxy.log_tail()), flush=True)
                report.record("%s/fleet" % proxy.name, False)
    finally:
        f.close()
    fleet.exit_with(report)


if __name__ == "__main__":
    main()
