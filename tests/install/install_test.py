#!/usr/bin/env python3
# `make install` as a user meets it: installs into a scratch prefix under a DESTDIR, builds the
# out-of-tree consumer of tests/install/consumer/ (a .proto through our plugin, a generated
# service, a main) against that tree only, once with `pkg-config --static` and a plain g++
# command line and once with CMake (find_package(uringrpc), uringrpc_generate()), runs each
# and calls it with the real gRPC Python client, then checks that `make uninstall` removes
# every file install put there and nothing else. Prints the RESULT line of
# tests/common/test_report.py. Under a sanitizer build (BUILD=build-asan, build-tsan) the
# installed archive needs the sanitizer runtime, so the two consumer builds are skipped;
# install and uninstall are still checked.
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "common"))
from test_report import Report, Skip, exit_with  # noqa: E402

import grpc  # noqa: E402  (Debian's python3-grpcio: run with /usr/bin/python3)

BUILD = os.environ.get("BUILD", "build")
PREFIX = "/opt/uringrpc-test"
# Files outside ours that the scratch tree holds before install: uninstall must leave them.
FOREIGN = ["bin/other-tool", "include/other/other.h", "lib/libother.a", "lib/pkgconfig/other.pc",
           "lib/cmake/other/other-config.cmake", "share/man/man3/other.3"]


def make_args():
    # The sanitizer builds are selected by SANITIZE=/TSAN= (which also set BUILD); passing
    # BUILD alone would compile anything stale in them without the sanitizer.
    if BUILD == "build-asan":
        return ["SANITIZE=1"]
    if BUILD == "build-tsan":
        return ["TSAN=1"]
    return [f"BUILD={BUILD}"]


def run(cmd, cwd=None, env=None, timeout=300):
    """Runs cmd; raises AssertionError with its output when it fails."""
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{p.stdout[-4000:]}")
    return p.stdout


def make(target, destdir):
    # A make of its own, not a job of the `make test` that may be running this file.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return run(["make", "-s", "-C", str(ROOT), target, f"PREFIX={PREFIX}", f"DESTDIR={destdir}",
                *make_args()], env=env, timeout=600)


def files_under(top):
    return sorted(str(p.relative_to(top)) for p in pathlib.Path(top).rglob("*") if not p.is_dir())


def expected_files():
    headers = [f"include/uringrpc/{h.name}" for h in (ROOT / "include" / "uringrpc").glob("*.h")]
    pages = [f"share/man/man{p.suffix[1:]}/{p.name}" for p in (ROOT / "man").glob("*.[1-8]")]
    return sorted(headers + pages + [
        "lib/liburingrpc.a", "bin/protoc-gen-uringrpc", "lib/pkgconfig/uringrpc.pc",
        "lib/cmake/uringrpc/uringrpc-config.cmake", "lib/cmake/uringrpc/uringrpc-config-version.cmake"])


def archive_is_sanitized(archive):
    undefined = run(["nm", "-u", str(archive)])
    return any(s in undefined for s in ("__asan_", "__tsan_", "__ubsan_"))


class Server:
    """A consumer binary started for one case; reads its "listening on PORT" line."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=15)
        except queue.Empty:
            line = ""
        if not line.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"{binary} did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        self.port = int(line.split()[2])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("consumer did not stop on SIGTERM")
        assert rc == 0, f"consumer exited {rc}: {self.proc.stderr.read()[-2000:]}"


def call_consumer(binary, pb2):
    """The real gRPC client against the consumer: unary, server streaming, an error status."""
    server = Server(binary)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            add = channel.unary_unary("/consumer.Adder/Add", request_serializer=pb2.Terms.SerializeToString,
                                      response_deserializer=pb2.Sum.FromString)
            count = channel.unary_stream("/consumer.Adder/Count", request_serializer=pb2.Limit.SerializeToString,
                                         response_deserializer=pb2.Sum.FromString)
            got = add(pb2.Terms(term=[2, 3, 37]), timeout=10).value
            assert got == 42, f"Add(2, 3, 37) = {got}"
            got = [s.value for s in count(pb2.Limit(to=3), timeout=10)]
            assert got == [1, 2, 3], f"Count(3) = {got}"
            try:
                list(count(pb2.Limit(to=-1), timeout=10))
                raise AssertionError("Count(-1) succeeded")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"Count(-1): {e.code()} {e.details()}"
                assert e.details() == "negative limit", e.details()
    finally:
        server.stop()


def build_with_pkg_config(src, staged):
    gen = src / "gen"
    gen.mkdir()
    # The staged .pc names PREFIX; the scratch tree is under DESTDIR.
    pc = ["pkg-config", f"--define-variable=prefix={staged}", "--static"]
    env = dict(os.environ, PKG_CONFIG_PATH=str(staged / "lib" / "pkgconfig"))
    cflags = run(pc + ["--cflags", "uringrpc"], env=env).split()
    libs = run(pc + ["--libs", "uringrpc"], env=env).split()
    run(["protoc", f"-I{src}", f"--plugin=protoc-gen-uringrpc={staged}/bin/protoc-gen-uringrpc",
         f"--cpp_out={gen}", f"--uringrpc_out={gen}", str(src / "adder.proto")])
    sources = [src / "adder_server.cc", gen / "adder.pb.cc", gen / "adder.uringrpc.pb.cc"]
    # One compiler per source, at once: the case stays well inside the CI budget.
    compiles = [subprocess.Popen(["g++", "-O0", *cflags, f"-I{gen}", "-c", str(s), "-o", f"{s}.o"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for s in sources]
    for s, p in zip(sources, compiles):
        out = p.communicate(timeout=300)[0]
        assert p.returncode == 0, f"g++ -c {s.name} failed:\n{out[-4000:]}"
    binary = src / "adder-pkg-config"
    run(["g++", *[f"{s}.o" for s in sources], *libs, "-o", str(binary)])
    return binary


def build_with_cmake(src, staged):
    build = src / "build"
    run(["cmake", "-S", str(src), "-B", str(build), f"-DCMAKE_PREFIX_PATH={staged}",
         "-DCMAKE_BUILD_TYPE=Debug"])
    run(["cmake", "--build", str(build), "-j2"])
    return build / "adder_server"


def main():
    report = Report()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="uringrpc-install-"))
    destdir = tmp / "stage"
    staged = pathlib.Path(f"{destdir}{PREFIX}")
    for f in FOREIGN:
        (staged / f).parent.mkdir(parents=True, exist_ok=True)
        (staged / f).write_text("not uringrpc's\n")

    def case(name, fn):
        try:
            fn()
            report.record(name, True)
            print(f"ok   {name}", flush=True)
        except Skip as e:
            report.skip(name)
            print(f"skip {name}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001  a failed case is reported, the next one runs
            report.record(name, False)
            print(f"FAIL {name}: {e}", flush=True)

    def install_puts_every_file():
        make("install", destdir)
        got = set(files_under(staged)) - set(FOREIGN)
        missing = sorted(set(expected_files()) - got)
        assert not missing, f"not installed: {missing}"
        # Anything else may only be a program from INSTALL_PROGRAMS, in bin/.
        extra = sorted(f for f in got - set(expected_files()) if not f.startswith("bin/"))
        assert not extra, f"installed beyond the list: {extra}"

    case("InstallPutsLibraryHeadersPluginPkgConfigCMakeAndManPages", install_puts_every_file)

    sanitized = archive_is_sanitized(staged / "lib" / "liburingrpc.a")
    pb2_dir = tmp / "python"
    pb2_dir.mkdir()
    run(["protoc", f"-I{ROOT / 'tests/install/consumer'}", f"--python_out={pb2_dir}", "adder.proto"])
    sys.path.insert(0, str(pb2_dir))
    import adder_pb2 as pb2  # noqa: E402

    def consumer_case(builder, subdir):
        def fn():
            if sanitized:
                raise Skip(f"{BUILD}'s archive needs the sanitizer runtime: no plain link")
            src = tmp / subdir
            shutil.copytree(ROOT / "tests" / "install" / "consumer", src)
            call_consumer(builder(src, staged), pb2)
        return fn

    case("PkgConfigStaticConsumerBuildsAndServesRealClient", consumer_case(build_with_pkg_config, "pc"))
    case("CMakeFindPackageConsumerBuildsAndServesRealClient", consumer_case(build_with_cmake, "cmake"))

    def uninstall_removes_exactly_ours():
        make("uninstall", destdir)
        left = files_under(staged)
        assert left == sorted(FOREIGN), f"after uninstall: {sorted(set(left) - set(FOREIGN))} left, " \
                                        f"{sorted(set(FOREIGN) - set(left))} removed"
        for d in ("include/uringrpc", "lib/cmake/uringrpc"):
            assert not (staged / d).exists(), f"{d} left behind"

    case("UninstallRemovesEveryInstalledFileAndNothingElse", uninstall_removes_exactly_ours)
    shutil.rmtree(tmp, ignore_errors=True)
    exit_with(report)


if __name__ == "__main__":
    main()
