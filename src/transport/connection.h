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
#include "loop/socket_ops.h"
#include "loop/timer_wheel.h"
#include "transport/output_queue.h"
#include "transport/transport.h"
#include "uringrpc/bytes.h"

namespace uringrpc::transport {

class TlsContext;
class TlsSession;

// The connection's life, one state at a time (Connection::move_to checks each step):
//   kHandshaking  TLS handshake / HTTP/2 preface pending, under the handshake deadline
//                 (which never closes it while its bytes wait unread on our side); reads
//                 and writes as kOpen does.                   → kOpen, kDraining, kClosing
//   kOpen         reading, handing bytes up, sending.         → kDraining, kClosing
//   kDraining     close_after_flush(): still reading, sending what is queued; FIN once
//                 the queue is empty.                         → kWriteShut, kClosing
//   kWriteShut    FIN sent; nothing more is sent, input is read only to reach the peer's
//                 EOF, or the linger timer ends it.           → kClosing
//   kClosing      the handler was told (on_closed), the fd is shut; waiting for the
//                 receive and send in flight to complete.     → kDead
//   kDead         fd closed, the delete deferred to the end of the loop turn. Terminal.
enum class ConnState : uint8_t { kHandshaking, kOpen, kDraining, kWriteShut, kClosing, kDead };

class Connection final : public Transport, public loop::TurnHook, private loop::BufferWaiter {
 public:
  // Takes ownership of the socket (a descriptor, or a slot of the shard ring's table).
  // peer_addr: the address accept() gave, needed for a direct socket (which getpeername
  // cannot name); null: asked of the descriptor. The object lives until its teardown
  // completes.
  static Connection* create(loop::Shard& shard, loop::SocketRef socket, const sockaddr_storage* peer_addr,
                            std::shared_ptr<TlsContext> tls, uint64_t handshake_timeout_ms);
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
  bool open() const { return state_ == ConnState::kHandshaking || state_ == ConnState::kOpen; }
  ConnState state() const { return state_; }
  uint64_t id() const { return id_; }

  void on_turn_end() noexcept override;

 private:
  struct RecvOp final : loop::Completion {
    Connection* c;
    void on_complete(int res, uint32_t flags) noexcept override { c->on_recv(res, flags); }
  };
  struct SendOp final : loop::Completion {
    Connection* c;
    void on_complete(int res, uint32_t flags) noexcept override { c->on_send(res, flags); }
  };

  Connection(loop::Shard& shard, loop::SocketRef socket, const sockaddr_storage* peer_addr,
             std::shared_ptr<TlsContext> tls, uint64_t handshake_timeout_ms);
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
  // kWriteShut: closing is safe once the peer has everything (SIOCOUTQ 0), or at the end
  // of the linger. A direct socket asks through the ring (on send_op_, idle after the FIN).
  void check_linger();
  void on_outq(int unacked);
  void die();
  void maybe_free();
  static void on_timer(void* self);
  // The peer's bytes wait for us (in the kernel, or for a receive buffer): the handshake
  // deadline does not count that time against the peer.
  bool peer_bytes_unread() const;
  void on_buffers_available() noexcept override;  // loop::BufferWaiter
  void move_to(ConnState next);
  // Input is handed up and output produced until the FIN (kHandshaking..kDraining).
  bool reading_up() const { return state_ <= ConnState::kDraining; }
  // Requests may still be submitted: the fd is not shut yet.
  bool alive() const { return state_ < ConnState::kClosing; }

  loop::Shard& shard_;
  int fd_;              // descriptor, or slot when direct_
  bool direct_;         // fd_ is a slot of the shard ring's registered file table
  uint64_t id_;
  std::string peer_;
  ConnState state_ = ConnState::kHandshaking;
  ConnectionHandler* handler_ = nullptr;
  std::unique_ptr<TlsSession> tls_;
  uint64_t handshake_timeout_ms_;

  RecvOp recv_op_;
  SendOp send_op_;
  // Not lifecycle: what is in flight and the reading backpressure. recv_armed_ and
  // send_in_flight_ guard the kernel's use of recv_op_/send_op_ (and send_msg_): kClosing
  // waits for both to clear. A receive that ended with -ENOBUFS waits in the buffer
  // ring's list instead (BufferWaiter::waiting()).
  bool recv_armed_ = false;
  bool send_in_flight_ = false;
  bool paused_ = false;      // pause_reading(): no receive is re-armed, input waits in stash_
  bool resume_due_ = false;  // resume_reading() asked; the stash is delivered at turn end
  std::vector<Bytes> stash_;     // received while paused (what was in flight at the cancel)
  OutputQueue out_;
  // What the kernel reads during a sendmsg (the msghdr and its iovecs) is borrowed from the
  // block pool for that send only: an idle connection carries none of it (it was 184 of this
  // object's 536 bytes). kInlineIov iovecs cover a turn's usual output; larger batches take
  // kMaxIov. Returned when the send completes (on_send) or with the connection.
  static constexpr size_t kInlineIov = 8;
  static constexpr size_t kMaxIov = 256;
  static constexpr size_t send_block_bytes(size_t iovs) { return sizeof(msghdr) + iovs * sizeof(iovec); }
  void release_send_block();
  msghdr* send_msg_ = nullptr;  // its iovecs follow it in the same block
  bool send_block_large_ = false;
  loop::Timer timer_;  // handshake deadline (TLS and HTTP/2 preface), then linger after half-close
  uint64_t linger_until_ms_ = 0;
};

}  // namespace uringrpc::transport
