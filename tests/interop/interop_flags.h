// The interop server's command line, spelled as every gRPC interop server spells it
// (--port, --use_tls, --tls_cert_file, --tls_key_file) plus ours (--grace-ms, --shards, and
// for fleet tests behind load balancers --server_id, --health and --max_connection_age_ms;
// --metrics_listen for tests/metrics).
// Parsed by interop_server.cc's main().
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace uringrpc::interop {

struct InteropFlags {
  unsigned port = 0;  // 0: any free port (the chosen one is printed)
  bool use_tls = false;
  std::string tls_cert_file;  // both empty: a generated test certificate
  std::string tls_key_file;
  std::chrono::milliseconds grace{5000};  // how long in-flight calls get on SIGINT/SIGTERM
  unsigned shards = 0;                    // 0: one per CPU (ServerOptions' default)
  std::string server_id;                  // non-empty: sent as x-served-by on every response
  bool health = false;                    // serve grpc.health.v1 (NOT_SERVING once a stop begins)
  std::chrono::milliseconds max_connection_age{0};        // ServerOptions::connection.max_age
  std::chrono::milliseconds max_connection_age_grace{0};  // ... .max_age_grace
  std::string metrics_listen;  // non-empty: metrics on, GET /metrics there (tests/metrics)
};

// Accepts "--name value" and "--name=value"; --use_tls takes true/false (or 1/0) and alone
// means true. Returns nullopt and sets *error on anything it does not understand.
std::optional<InteropFlags> parse_interop_flags(int argc, char** argv, std::string* error);

inline constexpr const char* kInteropUsage =
    "usage: interop-server [--port N] [--use_tls true|false] [--tls_cert_file PATH --tls_key_file PATH]\n"
    "                      [--grace-ms N] [--shards N] [--server_id NAME] [--health]\n"
    "                      [--max_connection_age_ms N] [--max_connection_age_grace_ms N]\n"
    "                      [--metrics_listen ADDRESS]";

}  // namespace uringrpc::interop
