// What makes the example server a daemon (man uringrpc-example-server(8)): its flags, where
// it listens (its own port, or the sockets systemd passed), and the graceful stop on
// SIGTERM or SIGINT with the configured grace. greeter_server.cc's main() calls these.
#pragma once

#include "uringrpc/uringrpc.h"

namespace example {

struct DaemonFlags {
  unsigned port = 50051;    // --port N (0: an ephemeral port); unused under socket activation
  unsigned grace_ms = 5000; // --grace-ms MS: how long in-flight calls may run after SIGTERM
  uringrpc::ServerOptions options;  // --shards N
};

// Parses argv into flags; prints the usage and returns false for a bad flag.
bool parse_flags(int argc, char** argv, DaemonFlags& flags);

// Blocks SIGINT and SIGTERM, before any server thread exists, so that only serve()'s
// sigwaitinfo() receives them.
void block_stop_signals();

// Listens on the sockets systemd passed (LISTEN_FDS), or else on localhost:--port; starts;
// prints "listening on PORT" per socket; waits for SIGTERM or SIGINT; stops gracefully.
// Returns the exit status: 0, or 1 when it cannot listen.
int serve(uringrpc::Server& server, const DaemonFlags& flags);

}  // namespace example
