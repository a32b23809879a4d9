#!/usr/bin/python3
# Calls a running benchmark server (ours or an anchor) once per method with the real gRPC
# Python client and checks the replies; exits non-zero on the first wrong one. Usage:
#   /usr/bin/python3 perf/anchors/check_server.py --port N [--tls-cert CERT]
import argparse
import sys

import grpc

from grpc_python_server import load_messages

PREFIX = "/grpc.testing.TestService/"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", help="trust this (self-signed) certificate and use TLS")
    parser.add_argument("--server-name", default="localhost",
                        help="name the TLS certificate is checked against")
    args = parser.parse_args()
    m = load_messages()
    target = f"127.0.0.1:{args.port}"
    if args.tls_cert:
        with open(args.tls_cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(
            target, creds, options=[("grpc.ssl_target_name_override", args.server_name)])
    else:
        channel = grpc.insecure_channel(target)

    def stub(kind, method, req, resp):
        return getattr(channel, kind)(PREFIX + method, request_serializer=req.SerializeToString,
                                      response_deserializer=resp.FromString)

    failures = 0

    def report(name, ok, detail):
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'OK  ' if ok else 'FAIL'} {name}: {detail}", flush=True)

    Empty = m["grpc.testing.Empty"]
    reply = stub("unary_unary", "EmptyCall", Empty, Empty)(Empty(), timeout=10)
    report("EmptyCall", reply.ByteSize() == 0, "empty reply")

    SimpleRequest, SimpleResponse = m["grpc.testing.SimpleRequest"], m["grpc.testing.SimpleResponse"]
    for size in (0, 1024, 65536):
        reply = stub("unary_unary", "UnaryCall", SimpleRequest, SimpleResponse)(
            SimpleRequest(response_size=size), timeout=10)
        body = reply.payload.body
        report(f"UnaryCall response_size={size}", len(body) == size and body == bytes(size),
               f"{len(body)} bytes")

    OutRequest = m["grpc.testing.StreamingOutputCallRequest"]
    OutResponse = m["grpc.testing.StreamingOutputCallResponse"]
    sizes = [1024] * 100 + [1, 0, 70000]
    request = OutRequest(response_parameters=[{"size": s} for s in sizes])
    got = [len(r.payload.body)
           for r in stub("unary_stream", "StreamingOutputCall", OutRequest, OutResponse)(
               request, timeout=10)]
    report("StreamingOutputCall", got == sizes, f"{len(got)} messages of the right sizes"
           if got == sizes else f"sizes {got[:5]}... ({len(got)} messages)")

    InRequest = m["grpc.testing.StreamingInputCallRequest"]
    InResponse = m["grpc.testing.StreamingInputCallResponse"]
    chunks = [27182, 8, 1828, 45904, 0]
    reply = stub("stream_unary", "StreamingInputCall", InRequest, InResponse)(
        iter([InRequest(payload={"body": bytes(n)}) for n in chunks]), timeout=10)
    report("StreamingInputCall", reply.aggregated_payload_size == sum(chunks),
           f"aggregated_payload_size={reply.aggregated_payload_size} (sent {sum(chunks)})")
    channel.close()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
