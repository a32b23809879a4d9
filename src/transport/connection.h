// Connection: one accepted socket on one shard. It keeps a multishot receive armed on the
// shard's buffer ring, decrypts when the port is secure, hands bytes to the protocol
// handler registered from above, and sends what the handler produces in one sendmsg per
// loop turn. Teardown is a state: the object frees itself once no request is in flight.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loop/completion.h"
#include "loop/shard.h"
#include "loop/timer_wheel.h"
#include "transport/output_queue.h"
#include "transport/transport.h"
#include "uringrpc/bytes.h"

namespace uringrpc::transport {

class TlsContext;
class TlsSession;

class Connection final : public Transport, public loop::TurnHook {
 public:
  // Takes ownership of fd. The object lives until its teardown completes.
  static Connection* create(loop::Shard& shard, int fd, std::shared_ptr<TlsContext> tls,
                            uint64_t handshake_timeout_ms);
  void set_handler(ConnectionHandler* handler) { handler_ = handler; }
  void start();

  // The handler has output: send it at the end of this loop turn.
  void request_flush() override;
  // Send what is queued, half-close, wait until the peer has it (or briefly), then close.
  void close_after_flush() override;
  // Close now; queued output is dropped.
  void abort() override;

  const std::string& peer() const override { return peer_; }
  void handshake_complete() override;
  void pause_reading() override;
  void resume_reading() override;
  size_t queued_output_bytes() const override { return out_.bytes(); }
  std::shared_ptr<const PeerIdentity> peer_identity() const override;
  bool open() const { return state_ == State::kOpen; }
  uint64_t id() const { return id_; }

  void on_turn_end() noexcept override;

 private:
  enum class State { kOpen, kDraining, kWriteShut, kDead };

  struct RecvOp final : loop::Completion {
    Connection* c;
    void on_complete(int res, uint32_t flags) noexcept override { c->on_recv(res, flags); }
  };
  struct SendOp final : loop::Completion {
    Connection* c;
    void on_complete(int res, uint32_t flags) noexcept override { c->on_send(res, flags); }
  };

  Connection(loop::Shard& shard, int fd, std::shared_ptr<TlsContext> tls, uint64_t handshake_timeout_ms);
  ~Connection();

  void arm_recv();
  void deliver_stashed();
  void on_recv(int res, uint32_t flags);
  void on_send(int res, uint32_t flags);
  void deliver(const Bytes& chunk);
  bool deliver_tls(const Bytes& ciphertext);
  void flush();
  void submit_send();
  void shut_write();
  void die();
  void maybe_free();
  static void on_timer(void* self);
  static void on_buffers_refilled(void* shard_list);

  loop::Shard& shard_;
  int fd_;
  uint64_t id_;
  std::string peer_;
  State state_ = State::kOpen;
  ConnectionHandler* handler_ = nullptr;
  std::unique_ptr<TlsSession> tls_;
  uint64_t handshake_timeout_ms_;

  RecvOp recv_op_;
  SendOp send_op_;
  bool recv_armed_ = false;
  bool starved_ = false;  // receive ended with -ENOBUFS; waiting for the ring to refill
  bool send_in_flight_ = false;
  bool freed_scheduled_ = false;
  bool handshake_done_ = false;  // the protocol above saw its peer's opening
  bool paused_ = false;          // pause_reading(): input waits in stash_
  bool resume_due_ = false;      // resume_reading() asked; delivered at turn end
  std::vector<Bytes> stash_;     // received while paused (what was in flight at the cancel)
  OutputQueue out_;
  // An idle connection should not carry a 4 KiB iovec array: small sends use the inline
  // one, larger batches borrow a kMaxIov array from the block pool until their send completes.
  static constexpr size_t kInlineIov = 8;
  static constexpr size_t kMaxIov = 256;
  void release_iov();
  iovec iov_inline_[kInlineIov];
  iovec* iov_ = iov_inline_;
  msghdr msg_{};
  loop::Timer timer_;  // handshake deadline (TLS and HTTP/2 preface), then linger after half-close
  uint64_t linger_until_ms_ = 0;
};

}  // namespace uringrpc::transport
