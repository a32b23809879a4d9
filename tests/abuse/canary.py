"""The canary of the abuse suite: a well-behaved gRPC client (grpcio) in its own process,
making one unary call every INTERVAL ms on one connection while attacks run on others.
Prints one line per call, "START_MONOTONIC LATENCY_MS STATUS", until stdin closes."""

import os
import sys
import threading
import time

import grpc


def main():
    port, interval_ms, deadline_ms = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    stop = threading.Event()

    def watch_stdin():
        # The harness closes our stdin (or dies): stop then.
        while os.read(0, 256):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    # Default channel options on purpose: a real client's pings (BDP probes) included.
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    echo = channel.unary_unary("/abuse.Abuse/Echo")
    grpc.channel_ready_future(channel).result(timeout=10)
    out = sys.stdout
    next_at = time.monotonic()
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            echo(b"canary", timeout=deadline_ms / 1000.0)
            status = "OK"
        except grpc.RpcError as e:
            status = e.code().name
        out.write("%.6f %.3f %s\n" % (t0, (time.monotonic() - t0) * 1000.0, status))
        out.flush()
        next_at += interval_ms / 1000.0
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()  # fell behind: keep the rate, don't burst to catch up
    channel.close()


if __name__ == "__main__":
    main()
