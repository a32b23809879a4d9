// A secure port's TLS state as the server keeps it: the slot its shards read contexts from,
// and the credentials the current context was built from, which reload_tls() reads again.
// ServerImpl (server.cc) holds one per secure listener.
#pragma once

#include <memory>

#include "transport/tls_context.h"
#include "transport/tls_context_slot.h"
#include "uringrpc/tls.h"

namespace uringrpc::server {

// A context built and checked, not yet serving: reloads build every port's first and
// install them only when all were built.
struct PreparedTls {
  std::shared_ptr<transport::TlsContext> context;
  TlsCredentials credentials;
};

// Throws std::invalid_argument (TlsContext::create's reasons).
PreparedTls prepare_tls(TlsCredentials credentials);

struct Tls {
  std::shared_ptr<transport::TlsContextSlot> slot;  // null: an insecure port
  TlsCredentials credentials;

  // A new slot holding a context built from `credentials`; throws std::invalid_argument.
  static Tls from(const TlsCredentials& credentials);
  // Another slot starting with the same context (systemd sockets added by one call).
  Tls copy() const;
  // New handshakes use `fresh` from now on; handshakes under way and open connections keep
  // the context they started with.
  void install(PreparedTls fresh);
};

}  // namespace uringrpc::server
