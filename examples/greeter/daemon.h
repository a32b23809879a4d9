// What makes the example server a daemon (man uringrpc-example-server(8)): its flags, where
// it listens (its own port, or the sockets systemd passed; TLS with --tls-cert/--tls-key),
// the graceful stop on SIGTERM or SIGINT with the configured grace, and SIGHUP reloading the
// TLS certificate files. greeter_server.cc's main() calls these.
#pragma once

#include <string>

#include "uringrpc/uringrpc.h"

namespace example {

struct DaemonFlags {
  unsigned port = 50051;    // --port N (0: an ephemeral port); unused under socket activation
  unsigned grace_ms = 5000; // --grace-ms MS: how long in-flight calls may run after SIGTERM
  uringrpc::ServerOptions options;  // --shards N
  // --tls-cert FILE --tls-key FILE (both or neither): serve TLS with this certificate chain
  // and key instead of h2c; SIGHUP reads both files again (Server::reload_tls).
  std::string tls_cert;
  std::string tls_key;
};

// Parses argv into flags; prints the usage and returns false for a bad flag.
bool parse_flags(int argc, char** argv, DaemonFlags& flags);

// Blocks SIGINT, SIGTERM and SIGHUP, before any server thread exists, so that only
// serve()'s sigwaitinfo() receives them.
void block_stop_signals();

// Listens on the sockets systemd passed (LISTEN_FDS), or else on localhost:--port; starts;
// prints "listening on PORT" per socket; on SIGHUP reloads the TLS files (keeping the
// current certificate, and saying why, when they do not load); waits for SIGTERM or
// SIGINT; stops gracefully. Returns the exit status: 0, or 1 when it cannot listen (or
// the TLS files do not load at start).
int serve(uringrpc::Server& server, const DaemonFlags& flags);

}  // namespace example
