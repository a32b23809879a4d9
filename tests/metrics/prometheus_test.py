# ServerOptions::metrics read by a real Prometheus: build/bin/interop-server runs with
# --metrics_listen, a Prometheus (Debian's `prometheus`) started here on loopback scrapes
# its GET /metrics every second, the real gRPC client (grpcio) makes OK and failing calls,
# and the counts are read back through Prometheus' HTTP query API. Skipped (each case
# counted as skipped) only when there is no prometheus binary. Prints RESULT passed=N failed=M skipped=K.
# Run: BUILD=build /usr/bin/python3 tests/metrics/prometheus_test.py
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_report import Report, exit_with  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
OK_CALLS = 5
UNIMPLEMENTED_CALLS = 3
TEST_SVC = 'grpc_service="grpc.testing.TestService",grpc_method="EmptyCall"'
UNIMPL_SVC = 'grpc_service="grpc.testing.UnimplementedService",grpc_method="UnimplementedCall"'
CASES = ["target_up", "started_ok_calls", "handled_ok_calls", "handled_unimplemented_calls",
         "histogram_count", "messages_each_way", "connections_accepted"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    """interop-server with metrics on a free loopback port; returns (proc, grpc port, metrics port)."""
    proc = subprocess.Popen([os.path.join(BUILD, "bin", "interop-server"), "--shards", "2",
                             "--metrics_listen", "127.0.0.1:0"], stdout=subprocess.PIPE)
    text = ""
    deadline = time.monotonic() + 10
    while not re.search(r"listening on \d+\n", text) and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            text += chunk.decode()
    port = re.search(r"listening on (\d+)", text)
    metrics = re.search(r"metrics on (\d+)", text)
    if not port or not metrics:
        stop(proc)
        raise RuntimeError("interop-server did not print its ports: " + text)
    return proc, int(port.group(1)), int(metrics.group(1))


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def start_prometheus(binary, workdir, target_port):
    port = free_port()
    config = os.path.join(workdir, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: uringrpc\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n")
    log = open(os.path.join(workdir, "prometheus.log"), "w")
    proc = subprocess.Popen([binary, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(workdir, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("prometheus exited %d; see its log:\n%s" % (proc.returncode, read(workdir)))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError("prometheus not ready after 30 s:\n" + read(workdir))


def read(workdir):
    with open(os.path.join(workdir, "prometheus.log")) as f:
        return f.read()[-3000:]


def query(prom_port, expr):
    """The instant vector's values as floats (one per series), through /api/v1/query."""
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"query {expr}: {body}")
    return [float(s["value"][1]) for s in body["data"]["result"]]


def wait_for(prom_port, expr, expected, timeout=20):
    """Polls until the query returns exactly [expected]; returns the last answer."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = query(prom_port, expr)
        if got == [float(expected)]:
            return got
        time.sleep(0.5)
    return got


def main():
    report = Report()
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    if binary is None:
        print("no prometheus binary (Debian package `prometheus`): skipping", flush=True)
        for c in CASES:
            report.skip(c)
        exit_with(report)
    import grpc  # python3-grpcio: the real gRPC client

    workdir = tempfile.mkdtemp(prefix="uringrpc-prometheus-")
    server = prom = None
    extra = None
    try:
        server, port, metrics_port = start_server()
        prom, prom_port = start_prometheus(binary, workdir, metrics_port)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            empty = channel.unary_unary("/grpc.testing.TestService/EmptyCall")
            for _ in range(OK_CALLS):
                empty(b"", timeout=5)
            unimplemented = channel.unary_unary("/grpc.testing.UnimplementedService/UnimplementedCall")
            for _ in range(UNIMPLEMENTED_CALLS):
                try:
                    unimplemented(b"", timeout=5)
                    raise RuntimeError("UnimplementedCall succeeded")
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
        checks = [
            ("target_up", 'up{job="uringrpc"}', 1),
            ("started_ok_calls", 'grpc_server_started_total{grpc_type="unary",%s}' % TEST_SVC, OK_CALLS),
            ("handled_ok_calls", 'grpc_server_handled_total{grpc_type="unary",%s,grpc_code="OK"}' % TEST_SVC, OK_CALLS),
            ("handled_unimplemented_calls",
             'grpc_server_handled_total{grpc_type="unary",%s,grpc_code="Unimplemented"}' % UNIMPL_SVC,
             UNIMPLEMENTED_CALLS),
            ("histogram_count", 'grpc_server_handling_seconds_bucket{%s,le="+Inf"}' % TEST_SVC, OK_CALLS),
            ("messages_each_way",
             'grpc_server_msg_received_total{%s} + grpc_server_msg_sent_total{%s}' % (TEST_SVC, TEST_SVC),
             2 * OK_CALLS),
            ("connections_accepted", "uringrpc_server_connections_accepted_total", 1),
        ]
        for case, expr, expected in checks:
            got = wait_for(prom_port, expr, expected)
            ok = got == [float(expected)]
            print(f"{'ok  ' if ok else 'FAIL'} {case}: {expr} = {got} (expected {expected})", flush=True)
            report.record(case, ok)
    except Exception as e:  # noqa: BLE001 - whatever broke, the cases not run are failures
        extra = f"{type(e).__name__}: {e}"
        for c in CASES:
            if c not in report.passed and c not in report.failed:
                report.record(c, False)
    finally:
        if prom is not None:
            stop(prom)
        if server is not None:
            rc = stop(server)
            if rc != 0 and extra is None:
                extra = f"interop-server exited {rc}"
        shutil.rmtree(workdir, ignore_errors=True)
    exit_with(report, extra)


if __name__ == "__main__":
    main()
