// MemoryTransport: the in-memory transport::Transport of the C++ tests and the connection
// fuzzer. It records what the protocol asked of its connection (flush, close, pause), lets a
// test drain the handler's output by hand or on a hook, and models a client reading slowly.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "transport/output_queue.h"
#include "transport/transport.h"

namespace uringrpc::testing {

class MemoryTransport final : public transport::Transport {
 public:
  explicit MemoryTransport(std::string peer = "test:memory") : peer_(std::move(peer)) {}

  // The protocol on top; drain() and peer_closed() talk to it. Tests that drive the
  // handler directly need none.
  void set_handler(transport::ConnectionHandler* h) { handler_ = h; }
  // Runs on every request_flush while open, e.g. to drain at the end of a loop turn (as
  // transport::Connection does); without it a test drains when it likes.
  void set_on_flush(std::function<void()> fn) { on_flush_ = std::move(fn); }

  // Asks the handler for up to `budget` bytes and appends them to `out`; closes afterwards
  // if close_after_flush was asked for. Returns how many bytes were produced.
  size_t drain(std::string& out, size_t budget);
  // The peer went away (EOF): the handler hears on_closed once.
  void peer_closed();

  // A client reading `bytes_per_turn` of what was sent each client_reads(); what it has not
  // read counts as queued output, so the protocol sees backpressure. 0: reads at once.
  void set_read_rate(size_t bytes_per_turn) { read_rate_ = bytes_per_turn; }
  // The client reads its share; like a send completing on a socket it asks for a flush.
  void client_reads();
  size_t unread() const { return unread_; }

  // transport::Transport
  void request_flush() override;
  void close_after_flush() override;
  // As Connection::abort: closed at once, the handler told from inside the call.
  void abort() override;
  const std::string& peer() const override { return peer_; }
  void handshake_complete() override { handshake_done = true; }
  void pause_reading() override { paused = true; }
  void resume_reading() override { paused = false; }
  // As on a socket, output being produced right now counts as queued too.
  size_t queued_output_bytes() const override;
  std::shared_ptr<const PeerIdentity> peer_identity() const override { return identity; }

  // What the protocol did, for the tests to assert.
  int flushes = 0;              // request_flush calls
  bool closing = false;         // close_after_flush was called
  bool aborted = false;         // abort was called
  bool closed = false;          // peer_closed or abort, or drained after close_after_flush
  bool handshake_done = false;  // handshake_complete was called
  bool paused = false;          // reading paused
  std::shared_ptr<const PeerIdentity> identity;  // what peer_identity() answers

 private:
  std::string peer_;
  transport::ConnectionHandler* handler_ = nullptr;
  std::function<void()> on_flush_;
  const transport::OutputQueue* producing_ = nullptr;
  size_t read_rate_ = 0;
  size_t unread_ = 0;  // sent but not read by the client yet ("in the socket")
};

}  // namespace uringrpc::testing
