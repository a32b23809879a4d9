// TlsSession: server-side TLS for one connection, as bytes in and bytes out over memory BIOs.
// The connection layer of a shard feeds it the ciphertext its io_uring receives returned and
// sends what read_ciphertext() yields; this class never touches a socket and never throws.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "transport/tls_context.h"
#include "uringrpc/peer_identity.h"

namespace uringrpc::transport {

class TlsSession {
 public:
  explicit TlsSession(std::shared_ptr<TlsContext> ctx);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class Result { kOk, kError, kClosed };  // kClosed: peer sent close_notify

  // Ciphertext received from the socket. Advances the handshake while it is not done, then
  // decrypts every complete record, so plaintext is readable as soon as this returns (also
  // application data that arrived in the same flight as the client's Finished).
  // kError is final; send pending_ciphertext() (it may hold an alert) and close.
  // kClosed is final for reading; plaintext decrypted before the close_notify stays readable.
  Result feed_ciphertext(const uint8_t* data, size_t len);

  // Copies decrypted application bytes into out (up to cap); returns bytes written, 0 when
  // none are available now.
  size_t read_plaintext(uint8_t* out, size_t cap);
  size_t pending_plaintext() const noexcept { return plain_end_ - plain_begin_; }

  // Encrypts application bytes; all of them are accepted (the output BIO grows). Bytes written
  // before the handshake is done are held and encrypted when it completes. False on fatal
  // error, and after shutdown().
  bool write_plaintext(const uint8_t* data, size_t len);

  // Ciphertext waiting to be sent (handshake messages, alerts, records).
  size_t pending_ciphertext() const;
  size_t read_ciphertext(uint8_t* out, size_t cap);

  bool handshake_done() const noexcept { return handshake_done_; }
  // ALPN selected "h2". The connection must close if the handshake finished without it
  // (a client that offered no ALPN at all gets this far).
  bool alpn_h2() const noexcept { return alpn_h2_; }

  // The client certificate's identity, fixed when the handshake completed: null before that,
  // and when the client presented none (kNone never asks; kRequest lets a client decline).
  // Shared so that the layers above may keep it past this session's life.
  const std::shared_ptr<const PeerIdentity>& peer_identity() const noexcept { return peer_identity_; }

  // Queues close_notify after everything written so far. Before the handshake is done it is
  // deferred until the handshake completes. Idempotent; no-op after an error.
  void shutdown();

  // One line, for the log; empty until something failed.
  std::string last_error() const { return error_; }

 private:
  Result advance();
  Result decrypt_available();
  bool encrypt(const uint8_t* data, size_t len);
  bool finish_handshake();
  bool capture_peer_identity();
  bool reserve_plain(size_t n) noexcept;
  void release_plain() noexcept;
  void fail(const char* what, int ssl_error);

  std::shared_ptr<TlsContext> ctx_;  // keeps the SSL_CTX alive as long as ssl_
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext from the peer; owned by ssl_
  BIO* out_ = nullptr;  // ciphertext to the peer; owned by ssl_

  bool handshake_done_ = false;
  bool alpn_h2_ = false;
  bool failed_ = false;
  bool peer_closed_ = false;
  bool shutdown_requested_ = false;
  std::string error_;
  std::shared_ptr<const PeerIdentity> peer_identity_;

  // Plaintext written before the handshake finished.
  std::string early_writes_;

  // Decrypted bytes not yet taken by read_plaintext: [plain_begin_, plain_end_) of plain_.
  // Hand-rolled rather than a std::vector so SSL_read writes straight into spare capacity
  // without zero-filling it first. Freed whenever it is drained, so idle connections hold none.
  std::unique_ptr<uint8_t[]> plain_;
  size_t plain_begin_ = 0;
  size_t plain_end_ = 0;
  size_t plain_cap_ = 0;
};

}  // namespace uringrpc::transport
