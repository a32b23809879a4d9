// Transport: what the protocol layers need from a connection, and nothing about sockets:
// a place to ask for a flush, to close, the peer's name and its TLS client identity.
// transport::Connection is the socket implementation; tests and fuzzers drive the HTTP/2
// and gRPC layers over an in-memory one.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "transport/output_queue.h"
#include "uringrpc/bytes.h"
#include "uringrpc/peer_identity.h"

namespace uringrpc::transport {

// The protocol on top of a connection (the HTTP/2 session), registered from above.
class ConnectionHandler {
 public:
  // Plaintext arrived. `data` may share a receive buffer; keep slices of it, not pointers.
  // Returning false closes the connection after what is queued has been sent.
  virtual bool on_bytes(const Bytes& data) noexcept = 0;
  // Called when the connection can send: append up to about `budget` bytes.
  virtual void produce_output(OutputQueue& out, size_t budget) noexcept = 0;
  // The transport is gone (peer closed, error, close finished). Called once; after it the
  // handler must not touch the connection.
  virtual void on_closed() noexcept = 0;

 protected:
  ~ConnectionHandler() = default;
};

class Transport {
 public:
  // The handler has output: it will be asked for it (produce_output) this loop turn.
  virtual void request_flush() = 0;
  // Send what is queued, then close.
  virtual void close_after_flush() = 0;
  // Close now; queued output is dropped.
  virtual void abort() = 0;
  // "ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "unix:/path".
  virtual const std::string& peer() const = 0;

  // The protocol's own opening finished (HTTP/2: the client preface and its SETTINGS):
  // the connection's handshake deadline no longer applies.
  virtual void handshake_complete() {}
  // Backpressure from the protocol when its peer does not read what it is sent: stop
  // taking input until resume_reading(). Bytes already received are kept, not lost.
  virtual void pause_reading() {}
  virtual void resume_reading() {}
  // Bytes produced but not yet accepted by the kernel.
  virtual size_t queued_output_bytes() const { return 0; }
  // The client certificate's identity (mutual TLS); null without TLS, before the handshake
  // completed, or when the client presented no certificate. Once set it is the same object
  // for the rest of the connection, so a holder of a copy holds the identity itself.
  virtual std::shared_ptr<const PeerIdentity> peer_identity() const { return nullptr; }

 protected:
  ~Transport() = default;
};

}  // namespace uringrpc::transport
