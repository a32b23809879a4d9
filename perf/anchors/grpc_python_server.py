#!/usr/bin/python3
# gRPC Python (asyncio) reference point of the benchmark (perf/): the same four
# grpc.testing.TestService methods as perf/bench_server.cc, on Debian's python3-grpcio.
# Usage: /usr/bin/python3 perf/anchors/grpc_python_server.py --port N [--tls-cert F --tls-key F]
#
# Debian ships no grpc_tools, so there are no generated servicers: the message classes are
# built at start-up from a descriptor set that protoc writes for Debian's grpc-proto files
# (no _pb2 modules, whose `grpc.testing` package name would also clash with grpcio's `grpc`),
# and the service is registered through grpc's generic handler API.
import argparse
import asyncio
import os
import signal
import stat
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO_ROOT = "/usr/share/grpc-proto"
SERVICE = "grpc.testing.TestService"


def load_messages():
    """Returns {full message name: class} for grpc/testing/test.proto and its imports."""
    with tempfile.NamedTemporaryFile(suffix=".pb") as out:
        subprocess.run(["protoc", f"-I{PROTO_ROOT}", "--include_imports",
                        f"--descriptor_set_out={out.name}", "grpc/testing/test.proto"],
                       check=True, timeout=60)
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:  # --include_imports lists dependencies first
        pool.Add(f)
    # GetMessageClass is the newer protobuf's spelling; Debian 12's 3.21 has GetPrototype.
    get_class = getattr(message_factory, "GetMessageClass", None) or \
        message_factory.MessageFactory(pool).GetPrototype
    return {d.full_name: get_class(d)
            for f in files.file
            for d in pool.FindFileByName(f.name).message_types_by_name.values()}


def make_handler(m):
    Empty = m["grpc.testing.Empty"]
    SimpleRequest = m["grpc.testing.SimpleRequest"]
    SimpleResponse = m["grpc.testing.SimpleResponse"]
    OutRequest = m["grpc.testing.StreamingOutputCallRequest"]
    OutResponse = m["grpc.testing.StreamingOutputCallResponse"]
    InRequest = m["grpc.testing.StreamingInputCallRequest"]
    InResponse = m["grpc.testing.StreamingInputCallResponse"]
    Payload = m["grpc.testing.Payload"]

    # Every server in the benchmark fills payloads the same way: `size` zero bytes.
    def payload(size):
        return Payload(body=bytes(max(size, 0)))

    async def empty_call(request, context):
        return Empty()

    # response_type is ignored (COMPRESSABLE is the only type the proto still defines).
    async def unary_call(request, context):
        return SimpleResponse(payload=payload(request.response_size))

    # One message per response_parameters entry; interval_us is ignored by every server in
    # the benchmark (the scenarios send 0).
    async def streaming_output_call(request, context):
        for params in request.response_parameters:
            yield OutResponse(payload=payload(params.size))

    async def streaming_input_call(request_iterator, context):
        total = 0
        async for request in request_iterator:
            total += len(request.payload.body)
        return InResponse(aggregated_payload_size=total)

    return grpc.method_handlers_generic_handler(SERVICE, {
        "EmptyCall": grpc.unary_unary_rpc_method_handler(
            empty_call, Empty.FromString, Empty.SerializeToString),
        "UnaryCall": grpc.unary_unary_rpc_method_handler(
            unary_call, SimpleRequest.FromString, SimpleResponse.SerializeToString),
        "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(
            streaming_output_call, OutRequest.FromString, OutResponse.SerializeToString),
        "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
            streaming_input_call, InRequest.FromString, InResponse.SerializeToString),
    })


async def serve(args):
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((make_handler(load_messages()),))
    # Loopback only, and the same address in every server of the benchmark.
    address = f"127.0.0.1:{args.port}"
    if args.tls_cert:
        with open(args.tls_cert, "rb") as c, open(args.tls_key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        sys.exit(f"cannot listen on {address}")
    await server.start()
    print(f"listening on {port}", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A runner holding our stdin as a pipe stops us by closing it; /dev/null does not count.
    mode = os.fstat(0).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        def on_stdin():
            if not os.read(0, 4096):
                loop.remove_reader(0)
                stop.set()
        loop.add_reader(0, on_stdin)
    await stop.wait()
    await server.stop(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
