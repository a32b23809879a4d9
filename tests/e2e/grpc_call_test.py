# build/bin/grpc-call end to end (man grpc-call(1)): against build/bin/example-server
# (helloworld.Greeter) and build/bin/interop-server (grpc.testing.TestService), both with
# server reflection. Calls with JSON, list, describe, streaming both ways, metadata, TLS,
# deadlines, and the exit codes of failures. Prints RESULT passed=N failed=M skipped=K.
# Run: BUILD=build /usr/bin/python3 tests/e2e/grpc_call_test.py
import json
import os
import re
import select
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_report import Report  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
GRPC_CALL = os.path.join(BUILD, "bin", "grpc-call")


class Server:
    """A server binary started with args; its port (and test CA, if any) from its stdout."""

    def __init__(self, binary, args):
        self.proc = subprocess.Popen([os.path.join(BUILD, "bin", binary)] + args, stdout=subprocess.PIPE)
        self.port = None
        self.ca = None
        text = ""
        deadline = time.monotonic() + 10
        while not re.search(r"listening on \d+\n", text) and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)  # unbuffered: select stays true
            if not chunk:
                break
            text += chunk.decode()
        for line in text.splitlines():
            if line.startswith("test CA: "):
                self.ca = line[len("test CA: "):].strip()
            m = re.match(r"listening on (\d+)$", line)
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            self.stop()
            raise RuntimeError(f"{binary} did not say it listens")

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def grpc_call(*args, stdin=None):
    r = subprocess.run([GRPC_CALL] + list(args), input=stdin, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def json_values(text):
    """The JSON values printed one after another (each response of a stream)."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return out
        value, at = decoder.raw_decode(text, at)
        out.append(value)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    report = Report()
    greeter = Server("example-server", ["--port", "0", "--shards", "1"])
    interop = Server("interop-server", ["--port", "0", "--shards", "2"])
    tls = Server("interop-server", ["--port", "0", "--shards", "1", "--use_tls"])
    g = f"localhost:{greeter.port}"
    i = f"127.0.0.1:{interop.port}"

    def case(name, fn):
        try:
            fn()
            report.record(name, True)
            print(f"ok   {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - each case reports its own failure
            report.record(name, False)
            print(f"FAIL {name}: {e}", flush=True)

    def greeter_say_hello():
        rc, out, err = grpc_call(g, "helloworld.Greeter/SayHello", '{"name":"you"}')
        check(rc == 0, f"rc {rc}: {err}")
        check(json_values(out) == [{"message": "Hello you"}], out)

    def greeter_dotted_method_and_default_request():
        rc, out, err = grpc_call("--plaintext", g, "helloworld.Greeter.SayHello")
        check(rc == 0 and json_values(out) == [{"message": "Hello "}], f"rc {rc} {out} {err}")

    def greeter_list():
        rc, out, err = grpc_call(g, "list")
        check(rc == 0, err)
        check(out.split() == ["helloworld.Greeter", "grpc.reflection.v1.ServerReflection",
                              "grpc.reflection.v1alpha.ServerReflection"], out)

    def greeter_describe():
        rc, out, err = grpc_call(g, "describe", "helloworld.Greeter")
        check(rc == 0, err)
        check(out.startswith("helloworld.Greeter is a service:"), out)
        check("rpc SayHello(.helloworld.HelloRequest) returns (.helloworld.HelloReply);" in out, out)
        check("returns (stream .helloworld.HelloReply);" in out, out)
        rc, out, err = grpc_call(g, "describe", "helloworld.HelloRequest")
        check(rc == 0 and "is a message:" in out and "string name = 1;" in out, out + err)
        rc, out, err = grpc_call(g, "describe", "helloworld.Greeter/SayHelloStream")
        check(rc == 0 and out.startswith("helloworld.Greeter.SayHelloStream is a method:"), out + err)

    def greeter_server_streaming():
        rc, out, err = grpc_call(g, "helloworld.Greeter/SayHelloStream", '{"name":"x"}')
        check(rc == 0, err)
        check([v["message"] for v in json_values(out)] == ["Hello x", "Bonjour x", "Hola x", "Hallo x", "Ciao x"], out)

    def interop_list_and_describe():
        rc, out, err = grpc_call(i, "list")
        check(rc == 0 and set(out.split()) == {"grpc.testing.TestService", "grpc.testing.UnimplementedService",
                                               "grpc.reflection.v1.ServerReflection",
                                               "grpc.reflection.v1alpha.ServerReflection"}, out + err)
        rc, out, err = grpc_call(i, "list", "grpc.testing.TestService")
        check(rc == 0 and "grpc.testing.TestService.StreamingInputCall" in out.split(), out + err)
        check(len(out.split()) == 8, out)
        rc, out, err = grpc_call(i, "describe", "grpc.testing.SimpleRequest")
        check(rc == 0 and ".grpc.testing.Payload payload = 3;" in out, out + err)
        rc, out, err = grpc_call(i, "describe", "grpc.testing.PayloadType")
        check(rc == 0 and "is an enum:" in out and "COMPRESSABLE = 0;" in out, out + err)

    def interop_server_streaming():
        rc, out, err = grpc_call(i, "grpc.testing.TestService/StreamingOutputCall",
                                 '{"responseParameters":[{"size":3},{"size":1},{"size":2}]}')
        check(rc == 0, err)
        bodies = [v.get("payload", {}).get("body", "") for v in json_values(out)]
        check(bodies == ["AAAA", "AA==", "AAA="], out)  # base64 of 3, 1 and 2 zero bytes

    def interop_client_streaming_args():
        rc, out, err = grpc_call(i, "grpc.testing.TestService/StreamingInputCall",
                                 '{"payload":{"body":"AAA="}}', '{"payload":{"body":"AA=="}}')
        check(rc == 0 and json_values(out) == [{"aggregatedPayloadSize": 3}], out + err)

    def interop_client_streaming_stdin():
        lines = '{"payload":{"body":"AAAA"}}\n\n{"payload":{"body":"AA=="}}\n{}\n'
        rc, out, err = grpc_call(i, "grpc.testing.TestService/StreamingInputCall", "-", stdin=lines)
        check(rc == 0 and json_values(out) == [{"aggregatedPayloadSize": 4}], out + err)
        rc, out, err = grpc_call(i, "grpc.testing.TestService/StreamingInputCall", "-", stdin="")
        check(rc == 0 and json_values(out) == [{}], out + err)  # no request: size 0, the default

    def interop_bidi():
        rc, out, err = grpc_call(i, "grpc.testing.TestService/FullDuplexCall",
                                 '{"responseParameters":[{"size":1}]}', '{"responseParameters":[{"size":2}]}')
        check(rc == 0, err)
        check([v["payload"]["body"] for v in json_values(out)] == ["AA==", "AAA="], out)

    def metadata_and_verbose():
        rc, out, err = grpc_call("-v", "-H", "x-grpc-test-echo-initial: hello", "-H", "X-Other:   spaced",
                                 i, "grpc.testing.TestService/EmptyCall")
        check(rc == 0 and json_values(out) == [{}], out + err)
        check("header x-grpc-test-echo-initial: hello" in err.splitlines(), err)

    def error_status_exit_code():
        rc, out, err = grpc_call(i, "grpc.testing.TestService/UnaryCall",
                                 '{"responseStatus":{"code":9,"message":"nope"}}')
        check(rc == 64 + 9, f"rc {rc}")
        check(err.strip() == "FAILED_PRECONDITION nope", err)
        check(out == "", out)
        rc, out, err = grpc_call(i, "grpc.testing.TestService/UnimplementedCall")
        check(rc == 64 + 12 and err.startswith("UNIMPLEMENTED"), f"rc {rc} {err}")

    def deadline_exceeded():
        rc, out, err = grpc_call("--deadline", "0.3", i, "grpc.testing.TestService/StreamingOutputCall",
                                 '{"responseParameters":[{"size":1,"intervalUs":3000000}]}')
        check(rc == 64 + 4 and err.startswith("DEADLINE_EXCEEDED"), f"rc {rc} {err}")

    def bad_json():
        rc, out, err = grpc_call(g, "helloworld.Greeter/SayHello", '{"name":')
        check(rc == 3 and "request 1 is not a helloworld.HelloRequest in JSON" in err, f"rc {rc} {err}")
        rc, out, err = grpc_call(g, "helloworld.Greeter/SayHello", '{"nom":"x"}')
        check(rc == 3 and "nom" in err, f"rc {rc} {err}")
        rc, out, err = grpc_call(i, "grpc.testing.TestService/StreamingInputCall", "{}", "[1")
        check(rc == 3 and "request 2 is not a grpc.testing.StreamingInputCallRequest" in err, f"rc {rc} {err}")

    def unknown_names():
        rc, out, err = grpc_call(g, "helloworld.Greeter/Nope")
        check(rc == 3 and "service helloworld.Greeter has no method Nope" in err, f"rc {rc} {err}")
        rc, out, err = grpc_call(g, "helloworld.Nobody/SayHello")
        check(rc == 3 and "no service helloworld.Nobody on the server" in err, f"rc {rc} {err}")
        rc, out, err = grpc_call(g, "describe", "helloworld.Missing")
        check(rc == 3 and "no symbol helloworld.Missing" in err, f"rc {rc} {err}")

    def usage_errors():
        for args in ([], [g], [g, "helloworld.Greeter/SayHello", "{}", "{}"], ["--deadline", "-1", g, "list"],
                     ["--bogus", g, "list"], ["-H", "novalue", g, "list"]):
            rc, out, err = grpc_call(*args)
            check(rc == 2 and "usage: grpc-call" in err, f"{args}: rc {rc} {err}")

    def unreachable_server():
        # A port of ours that nothing listens on any more: bind, note it, close.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rc, out, err = grpc_call(f"127.0.0.1:{port}", "list")
        check(rc == 64 + 14 and "UNAVAILABLE" in err, f"rc {rc} {err}")

    def tls_with_ca_file():
        check(tls.ca, "interop-server --use_tls printed no test CA")
        rc, out, err = grpc_call("--cacert", tls.ca, f"localhost:{tls.port}", "grpc.testing.TestService/UnaryCall",
                                 '{"responseSize":2}')
        check(rc == 0 and json_values(out) == [{"payload": {"body": "AAA="}}], f"rc {rc} {out} {err}")
        rc, out, err = grpc_call(f"localhost:{tls.port}", "list")  # plaintext to a TLS port
        check(rc == 64 + 14, f"rc {rc} {err}")

    for name, fn in [("greeter_say_hello", greeter_say_hello),
                     ("greeter_dotted_method_and_default_request", greeter_dotted_method_and_default_request),
                     ("greeter_list", greeter_list), ("greeter_describe", greeter_describe),
                     ("greeter_server_streaming", greeter_server_streaming),
                     ("interop_list_and_describe", interop_list_and_describe),
                     ("interop_server_streaming", interop_server_streaming),
                     ("interop_client_streaming_args", interop_client_streaming_args),
                     ("interop_client_streaming_stdin", interop_client_streaming_stdin),
                     ("interop_bidi", interop_bidi), ("metadata_and_verbose", metadata_and_verbose),
                     ("error_status_exit_code", error_status_exit_code), ("deadline_exceeded", deadline_exceeded),
                     ("bad_json", bad_json), ("unknown_names", unknown_names), ("usage_errors", usage_errors),
                     ("unreachable_server", unreachable_server), ("tls_with_ca_file", tls_with_ca_file)]:
        case(name, fn)

    failures = []
    for name, server in (("example-server", greeter), ("interop-server", interop), ("interop-server --use_tls", tls)):
        rc = server.stop()
        if rc != 0:
            failures.append(f"{name} exited {rc}")
    sys.exit(report.finish("; ".join(failures) or None))


if __name__ == "__main__":
    main()
