// TlsContext: the server-side SSL_CTX built from TlsCredentials for a secure port, with one
// more SSL_CTX per SNI certificate. The server creates it when a secure port is added or its
// credentials are reloaded (so it may throw); every shard then makes one TlsSession per
// accepted connection from the context its TlsContextSlot holds then.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "uringrpc/tls.h"

namespace uringrpc::transport {

class TlsContext {
 public:
  // Throws std::invalid_argument saying which PEM failed to parse, that the key does not
  // match the certificate, or what the client-certificate settings lack, with OpenSSL's
  // reason appended.
  static std::shared_ptr<TlsContext> create(const TlsCredentials& credentials);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Shared by all shards: OpenSSL 3 allows SSL_new on one SSL_CTX from many threads, and
  // nothing here mutates the context after create().
  // The default certificate's context: sessions start here; the SNI callback may switch a
  // session to one of the named contexts, which this object owns as long as it lives.
  SSL_CTX* native() const noexcept { return ctx_; }
  // The SNI certificate's context for a client's server name, or null (the default). Exact
  // names first, then "*." wildcards of one label; ASCII case does not matter.
  SSL_CTX* for_server_name(std::string_view name) const noexcept;

 private:
  explicit TlsContext(SSL_CTX* ctx) noexcept : ctx_(ctx) {}
  static int on_server_name(SSL* ssl, int* alert, void* arg);

  struct Named {
    std::string name;  // lower case; "*.example.com" for a wildcard
    SSL_CTX* ctx;
  };
  SSL_CTX* ctx_;
  std::vector<Named> named_;
};

// Drains the calling thread's OpenSSL error queue into one line ("a; b; c"), or returns
// `fallback` when the queue is empty. The queue is empty afterwards.
std::string drain_openssl_errors(const char* fallback);

}  // namespace uringrpc::transport
