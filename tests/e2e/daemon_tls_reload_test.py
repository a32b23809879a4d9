# The example daemon (build/bin/example-server, man uringrpc-example-server(8)) serving TLS with
# --tls-cert/--tls-key and reloading them on SIGHUP, checked with Python's grpcio: certificate
# A, then B after a SIGHUP (a channel connected under A keeps working, new channels verify
# against B and fail against A), a broken file keeps B and is logged, SIGTERM still exits 0.
# Certificates come from the openssl command line. Prints RESULT passed=N failed=M skipped=K.
# Run: BUILD=build /usr/bin/python3 tests/e2e/daemon_tls_reload_test.py
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_report import Report, exit_with  # noqa: E402

import grpc  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
SERVER = os.path.join(BUILD, "bin", "example-server")
REQUEST = b"\n\x03you"  # helloworld.HelloRequest{name: "you"}
REPLY = b"\n\tHello you"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_cert(dir_, name):
    """A CA of its own and a localhost server certificate it signed; returns the file names."""
    ca_key, ca, key, csr, cert = (f"{name}-{x}" for x in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", f"/CN={name} CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=dir_)
    openssl("req", *curve, "-keyout", key, "-out", csr, "-subj", f"/CN={name}", cwd=dir_)
    ext = os.path.join(dir_, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "2", "-extfile", ext, cwd=dir_)
    read = lambda n: open(os.path.join(dir_, n), "rb").read()  # noqa: E731
    return {"ca": read(ca), "chain": read(cert) + read(ca), "key": read(key)}


def install(path, content):
    """Writes beside, then renames into place, as a deployment would."""
    with open(path + ".tmp", "wb") as f:
        f.write(content)
    os.rename(path + ".tmp", path)


class Daemon:
    def __init__(self, cert_path, key_path):
        self.proc = subprocess.Popen([SERVER, "--port", "0", "--shards", "2", "--tls-cert", cert_path,
                                      "--tls-key", key_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = []
        self.lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening on (\d+) \(TLS\)$", line.strip())
        if not m:
            self.proc.kill()
            raise RuntimeError(f"example-server did not say it listens with TLS: {line!r}")
        self.port = int(m.group(1))

    def _drain(self):
        for line in self.proc.stderr:
            with self.lock:
                self.stderr.append(line.decode(errors="replace").rstrip("\n"))

    def wait_for_log(self, pattern, after, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for line in self.stderr[after:]:
                    if re.search(pattern, line):
                        return line
            time.sleep(0.05)
        return None

    def log_count(self):
        with self.lock:
            return len(self.stderr)


def channel(port, ca):
    # A private subchannel pool: a new channel is a new connection, never one shared with
    # an earlier channel of this process.
    return grpc.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(root_certificates=ca),
                               options=[("grpc.use_local_subchannel_pool", 1)])


def call(ch):
    """None when the call succeeds with the expected reply, else the failure's text."""
    try:
        reply = ch.unary_unary("/helloworld.Greeter/SayHello")(REQUEST, timeout=5)
        return None if reply == REPLY else f"unexpected reply {reply!r}"
    except grpc.RpcError as e:
        return f"{e.code().name}: {e.details()}"


def fresh_call(port, ca):
    ch = channel(port, ca)
    try:
        return call(ch)
    finally:
        ch.close()


def main():
    report = Report()
    dir_ = tempfile.mkdtemp(prefix="uringrpc-daemon-tls-")
    daemon = None
    try:
        a, b = make_cert(dir_, "daemon A"), make_cert(dir_, "daemon B")
        cert_path, key_path = os.path.join(dir_, "server.pem"), os.path.join(dir_, "server.key")
        install(cert_path, a["chain"])
        install(key_path, a["key"])
        daemon = Daemon(cert_path, key_path)
        port = daemon.port

        def check(case, ok, detail=""):
            print(f"{'ok  ' if ok else 'FAIL'} {case}{': ' + detail if detail and not ok else ''}", flush=True)
            report.record(case, ok)

        check("serves certificate A", fresh_call(port, a["ca"]) is None, str(fresh_call(port, a["ca"])))
        refused = fresh_call(port, b["ca"])
        check("a client trusting only B is refused before the reload",
              refused is not None and refused.startswith("UNAVAILABLE"), str(refused))

        old = channel(port, a["ca"])
        check("a channel connects under A", call(old) is None, str(call(old)))

        install(cert_path, b["chain"])
        install(key_path, b["key"])
        mark = daemon.log_count()
        daemon.proc.send_signal(signal.SIGHUP)
        line = daemon.wait_for_log(r"SIGHUP: TLS certificate reloaded for 1 port$", mark)
        check("SIGHUP reloads and says so", line is not None, "\n".join(daemon.stderr[mark:]))

        results = [fresh_call(port, b["ca"]) for _ in range(4)]
        check("new channels verify against B after SIGHUP", all(r is None for r in results), str(results))
        results = [fresh_call(port, a["ca"]) for _ in range(4)]
        check("new channels trusting only A are refused after SIGHUP",
              all(r is not None and r.startswith("UNAVAILABLE") for r in results), str(results))
        results = [call(old) for _ in range(3)]
        check("the channel connected under A keeps working", all(r is None for r in results), str(results))

        install(cert_path, b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        mark = daemon.log_count()
        daemon.proc.send_signal(signal.SIGHUP)
        line = daemon.wait_for_log(r"SIGHUP: reload_tls: .*cannot parse the leaf certificate.*stay in use", mark)
        check("a broken certificate file is refused and logged", line is not None, "\n".join(daemon.stderr[mark:]))
        check("B stays after the broken reload", fresh_call(port, b["ca"]) is None, str(fresh_call(port, b["ca"])))
        check("the daemon still runs", daemon.proc.poll() is None)
        old.close()

        daemon.proc.send_signal(signal.SIGTERM)
        try:
            status = daemon.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.proc.kill()
            status = "hung"
        check("SIGTERM still stops it with status 0", status == 0, f"status {status}")
        daemon = None
    finally:
        if daemon is not None:
            daemon.proc.kill()
            daemon.proc.wait()
        shutil.rmtree(dir_, ignore_errors=True)
    exit_with(report)


if __name__ == "__main__":
    main()
