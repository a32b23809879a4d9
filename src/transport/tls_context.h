// TlsContext: the server-side SSL_CTX built once per secure port from TlsCredentials.
// The server creates it when a secure port is added (configuration time, so it may throw);
// every shard then makes one TlsSession per accepted connection from the shared context.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>

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
  SSL_CTX* native() const noexcept { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) noexcept : ctx_(ctx) {}

  SSL_CTX* ctx_;
};

// Drains the calling thread's OpenSSL error queue into one line ("a; b; c"), or returns
// `fallback` when the queue is empty. The queue is empty afterwards.
std::string drain_openssl_errors(const char* fallback);

}  // namespace uringrpc::transport
