#!/usr/bin/python3
"""Checks that a fan-out server of `make fanout-compare` (ours: build/perf/fanout-server,
grpc-go: build/perf/grpc-go-fanout-server) applies the slow-subscriber policy of
examples/fanout: one subscriber reads everything (the real gRPC Python client), another one
(a raw h2 connection with a 1 KiB stream window that it never reopens) stalls; 12,000 messages
are published, one every 500 µs, with a queue of 256.
  disconnect:  the reader gets all 12,000 in order; the stalled one gets the first messages in
               order and then RESOURCE_EXHAUSTED (8); the server counts 1 disconnected.
  drop-oldest: the reader gets all 12,000; the stalled one stays subscribed, gets an increasing
               subsequence ending with the last message, then OK after "close".
Usage: /usr/bin/python3 perf/fanout_policy_check.py [--build DIR]; exits non-zero on a failure.
"""
import argparse
import re
import socket
import subprocess
import sys
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings

GREETER = "/helloworld.Greeter/"
# More than either server buffers for a stream whose window is shut before its handler waits
# (grpc-go's 64 KiB write quota, our 256 KiB write watermark: about 8,000 of these messages),
# so the queue behind it really fills.
N = 12000


def pb_string(field, text):
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data


def decode_reply(body):
    """HelloReply.message of one serialized reply (field 1, shorter than 128 bytes)."""
    return body[2:2 + body[1]].decode() if body else ""


class StalledSubscriber:
    """SayHelloStream on its own h2c connection whose stream window stays at 1 KiB."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
        self.sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.sid, [(":method", "POST"), (":scheme", "http"), (":path", GREETER + "SayHelloStream"),
                                          (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                                          ("te", "trailers")])
        self.conn.send_data(self.sid, b"\0\0\0\0\0", end_stream=True)  # an empty HelloRequest
        self.sock.sendall(self.conn.data_to_send())
        self.buf, self.messages, self.status = b"", [], None

    def read_to_end(self, timeout=20):
        """Opens the windows and reads until the trailers."""
        self.sock.settimeout(timeout)
        self.conn.increment_flow_control_window(1 << 24)
        self.conn.increment_flow_control_window(1 << 24, stream_id=self.sid)
        self.sock.sendall(self.conn.data_to_send())
        while self.status is None:
            data = self.sock.recv(65536)
            if not data:
                break
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.DataReceived) and ev.stream_id == self.sid:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, self.sid)
                    self.buf += ev.data
                    while len(self.buf) >= 5 and len(self.buf) >= 5 + int.from_bytes(self.buf[1:5], "big"):
                        n = int.from_bytes(self.buf[1:5], "big")
                        self.messages.append(decode_reply(self.buf[5:5 + n]))
                        self.buf = self.buf[5 + n:]
                elif isinstance(ev, (h2.events.TrailersReceived, h2.events.ResponseReceived)):
                    headers = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                               for k, v in ev.headers}
                    if "grpc-status" in headers:
                        self.status = int(headers["grpc-status"])
            self.sock.sendall(self.conn.data_to_send())
        self.sock.close()


def seqs(messages):
    return [int(m.split()[1]) for m in messages]


def check(name, cmd, policy):
    failures = []
    server = subprocess.Popen(cmd + ["--queue", "256", "--policy", policy], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    port = int(re.match(r"listening on (\d+)", server.stdout.readline()).group(1))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    say = channel.unary_unary(GREETER + "SayHello", request_serializer=lambda s: pb_string(1, s),
                              response_deserializer=decode_reply)
    stream = channel.unary_stream(GREETER + "SayHelloStream", request_serializer=lambda _: b"",
                                  response_deserializer=decode_reply)
    got, reader_status = [], []

    def read():
        call = stream(None, timeout=60)
        try:
            for m in call:
                got.append(m)
        except grpc.RpcError:
            pass
        reader_status.append(call.code())

    reader = threading.Thread(target=read)
    reader.start()
    stalled = StalledSubscriber(port)
    deadline = time.time() + 10
    while not say("stats", timeout=5).startswith("subscribers 2") and time.time() < deadline:
        time.sleep(0.05)
    say(f"publish {N} 500", timeout=5)  # one every 500 µs: a reader keeps up
    deadline = time.time() + 30
    while len(got) < N and time.time() < deadline:
        time.sleep(0.05)
    stats = say("stats", timeout=5)
    say("close", timeout=5)
    reader.join(20)
    stalled.read_to_end()
    s = seqs(stalled.messages)
    if seqs(got) != list(range(N)) or reader_status != [grpc.StatusCode.OK]:
        failures.append(f"reader got {len(got)} messages, status {reader_status}")
    if policy == "disconnect":
        if stalled.status != 8 or s != list(range(len(s))) or len(s) >= N or "disconnected 1" not in stats:
            failures.append(f"stalled: status {stalled.status}, {len(s)} messages, stats '{stats}'")
    else:
        if (stalled.status != 0 or s != sorted(set(s)) or not s or s[-1] != N - 1 or len(s) >= N
                or "disconnected 0" not in stats or " dropped 0 " in stats):
            failures.append(f"stalled: status {stalled.status}, {len(s)} messages (last {s[-1:]}), stats '{stats}'")
    channel.close()
    server.stdin.close()
    server.wait(20)
    print(f"{'OK  ' if not failures else 'FAIL'} {name} --policy {policy}: stalled subscriber got {len(s)} "
          f"messages then status {stalled.status}; server: {stats}" + "".join(f"; {f}" for f in failures), flush=True)
    return not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    servers = {"ours": [f"{args.build}/perf/fanout-server", "--shards", "2"],
               "grpc-go": [f"{args.build}/perf/grpc-go-fanout-server"]}
    ok = all([check(n, c, p) for n, c in servers.items() for p in ("disconnect", "drop-oldest")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
