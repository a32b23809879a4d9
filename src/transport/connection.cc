// Connection I/O and teardown. States (ConnState in connection.h): handshaking → open →
// draining (flush what is queued) → write-shut (FIN sent, reading until the peer's EOF or
// the linger timer) → closing (fd shut, waiting for in-flight requests) → dead (freed at
// the end of the loop turn).
#include "transport/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "base/probes.h"
#include "base/small_pool.h"
#include "transport/tls_context.h"
#include "transport/tls_session.h"

namespace uringrpc::transport {
namespace {

constexpr uint64_t kLingerMs = 2000;
constexpr uint64_t kLingerPollMs = 5;
constexpr size_t kFlushBudget = 1u << 20;
constexpr size_t kTlsChunk = 16u << 10;

// Labels logs and the conn_accept/conn_close probes, so unique across shards. A relaxed
// atomic rather than per-shard counters: it is taken once per connection (beside accept,
// getpeername and setsockopt, each a syscall), never per RPC, and the ids stay small and
// in accept order in the logs. Relaxed: nothing else is ordered by it.
std::atomic<uint64_t> g_next_id{1};

// Nagle off: a gRPC response is written whole in one sendmsg, and waiting for the ACK of
// the previous segment before sending the next would add a round trip to streams.
// Static: a direct socket's setsockopt reads it when the ring runs the command.
const int kNoDelay = 1;

std::string describe_peer(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string("ipv4:") + buf + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return std::string("ipv6:[") + buf + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  if (ss.ss_family == AF_UNIX) {
    auto* a = reinterpret_cast<const sockaddr_un*>(&ss);
    return std::string("unix:") + a->sun_path;
  }
  return "unknown";
}

std::string describe_peer(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  return describe_peer(ss);
}

}  // namespace

Connection* Connection::create(loop::Shard& shard, loop::SocketRef socket, const sockaddr_storage* peer_addr,
                               std::shared_ptr<TlsContext> tls, uint64_t handshake_timeout_ms) {
  return new Connection(shard, socket, peer_addr, std::move(tls), handshake_timeout_ms);
}

Connection::Connection(loop::Shard& shard, loop::SocketRef socket, const sockaddr_storage* peer_addr,
                       std::shared_ptr<TlsContext> tls, uint64_t handshake_timeout_ms)
    : shard_(shard), fd_(socket.index), direct_(socket.direct),
      id_(g_next_id.fetch_add(1, std::memory_order_relaxed)), handshake_timeout_ms_(handshake_timeout_ms) {
  if (direct_) {
    // No syscall can name a direct socket: the peer comes from accept's own address
    // buffer and TCP_NODELAY goes through the ring (its completion is not needed; on a
    // unix socket it fails harmlessly).
    peer_ = peer_addr ? describe_peer(*peer_addr) : "unknown";
    io_uring_sqe* sqe = shard_.ring().get_sqe();
    loop::prep_socket_setsockopt(sqe, socket, IPPROTO_TCP, TCP_NODELAY, &kNoDelay);
    loop::Ring::bind(sqe, nullptr);
  } else {
    peer_ = peer_addr ? describe_peer(*peer_addr) : describe_peer(fd_);
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &kNoDelay, sizeof kNoDelay);  // fails harmlessly on unix sockets
  }
  if (tls) tls_ = std::make_unique<TlsSession>(std::move(tls));
  recv_op_.c = this;
  send_op_.c = this;
  timer_.set_callback(&Connection::on_timer, this);
  shard_.hold();
}

Connection::~Connection() {
  release_send_block();
  shard_.release();
  // ~BufferWaiter leaves the buffer ring's list if still waiting.
}

void Connection::move_to(ConnState next) {
  // The edges of the table in connection.h; anything else is a bug in this file.
  auto ok = [&] {
    switch (state_) {
      case ConnState::kHandshaking: return next == ConnState::kOpen || next == ConnState::kDraining || next == ConnState::kClosing;
      case ConnState::kOpen: return next == ConnState::kDraining || next == ConnState::kClosing;
      case ConnState::kDraining: return next == ConnState::kWriteShut || next == ConnState::kClosing;
      case ConnState::kWriteShut: return next == ConnState::kClosing;
      case ConnState::kClosing: return next == ConnState::kDead;
      case ConnState::kDead: return false;
    }
    return false;
  };
  if (!ok()) {
    URINGRPC_LOG(base::LogLevel::kError, "conn %lu: bad state transition %d -> %d", (unsigned long)id_,
                 static_cast<int>(state_), static_cast<int>(next));
    std::abort();
  }
  state_ = next;
}

void Connection::start() {
  // Covers the TLS handshake and the HTTP/2 preface alike: a peer that connects and
  // stays silent (or trickles bytes) is closed when it expires.
  if (handshake_timeout_ms_ > 0) shard_.timers().arm(timer_, shard_.now_ms() + handshake_timeout_ms_);
  arm_recv();
  if (!tls_) request_flush();  // the handler's SETTINGS go out right away
}

void Connection::arm_recv() {
  if (recv_armed_ || paused_ || !alive()) return;
  io_uring_sqe* sqe = shard_.ring().get_sqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  loop::use_socket(sqe, {fd_, direct_});
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = loop::BufferRing::kGroupId;
  loop::Ring::bind(sqe, &recv_op_);
  recv_armed_ = true;
}

void Connection::on_buffers_available() noexcept { arm_recv(); }

void Connection::on_recv(int res, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) recv_armed_ = false;
  if (res > 0) {
    Bytes chunk = shard_.buffers().take(static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT),
                                        static_cast<uint32_t>(res));
    if (paused_) {
      stash_.push_back(std::move(chunk));  // arrived before the cancel took effect
    } else if (reading_up()) {
      deliver(chunk);
    }
    // After our FIN, incoming bytes are only read to reach the peer's EOF cleanly.
  } else if (res == 0) {
    die();  // peer closed
  } else if (res == -ENOBUFS) {
    // Every receive buffer is held (by messages handlers have not released yet): wait for
    // the ring to refill. Buffers may already have come back between the kernel's failure
    // and this completion (the refill callback then ran before we were waiting for it):
    // in that case receive again at once.
    if (!recv_armed_ && alive() && shard_.buffers().free_buffers() > 0) {
      arm_recv();
    } else if (!recv_armed_ && alive()) {
      shard_.buffers().wait_for_buffers(*this);
    }
  } else if (res != -ECANCELED) {
    URINGRPC_LOG(base::LogLevel::kDebug, "conn %lu recv: %s", (unsigned long)id_, std::strerror(-res));
    die();
  }
  if (!recv_armed_ && !waiting() && alive()) arm_recv();
  maybe_free();
}

void Connection::handshake_complete() {
  // Only the first opening counts, and only while it is pending: once draining, the
  // timer (if still armed) ends the connection as it was going to.
  if (state_ != ConnState::kHandshaking) return;
  move_to(ConnState::kOpen);
  shard_.timers().cancel(timer_);
}

void Connection::pause_reading() {
  if (paused_ || !alive()) return;
  paused_ = true;
  // Stop the multishot receive so the kernel keeps the peer's bytes (and TCP pushes back
  // on it) instead of this connection holding more of the shard's receive buffers.
  if (recv_armed_) {
    io_uring_sqe* sqe = shard_.ring().get_sqe();
    io_uring_prep_cancel(sqe, &recv_op_, 0);
    loop::Ring::bind(sqe, nullptr);
  }
}

void Connection::resume_reading() {
  if (!paused_) return;
  paused_ = false;
  // Usually called from inside produce_output: deliver the stash from the turn-end hook,
  // never re-entering the protocol while it is writing.
  resume_due_ = true;
  shard_.at_turn_end(this);
}

void Connection::deliver_stashed() {
  size_t i = 0;
  for (; i < stash_.size() && !paused_; ++i) {
    if (reading_up()) deliver(stash_[i]);
  }
  stash_.erase(stash_.begin(), stash_.begin() + static_cast<std::ptrdiff_t>(i));
  if (!paused_ && !recv_armed_ && !waiting() && alive()) arm_recv();
}

void Connection::deliver(const Bytes& chunk) {
  if (tls_) {
    if (!deliver_tls(chunk)) die();
    return;
  }
  if (handler_ && !handler_->on_bytes(chunk)) close_after_flush();
  request_flush();
}

bool Connection::deliver_tls(const Bytes& ciphertext) {
  bool was_done = tls_->handshake_done();
  auto r = tls_->feed_ciphertext(ciphertext.data(), ciphertext.size());
  if (r == TlsSession::Result::kError) {
    URINGRPC_LOG(base::LogLevel::kInfo, "conn %lu (%s): TLS error: %s", (unsigned long)id_,
                 peer_.c_str(), tls_->last_error().c_str());
    // Send the alert if there is one, then close.
    close_after_flush();
    request_flush();
    return true;
  }
  if (!was_done && tls_->handshake_done()) {
    if (!tls_->alpn_h2()) {
      URINGRPC_LOG(base::LogLevel::kInfo, "conn %lu (%s): TLS client did not negotiate h2",
                   (unsigned long)id_, peer_.c_str());
      return false;
    }
  }
  while (tls_->pending_plaintext() > 0 && reading_up()) {
    std::string plain(std::min(tls_->pending_plaintext(), kTlsChunk * 4), '\0');
    size_t n = tls_->read_plaintext(reinterpret_cast<uint8_t*>(plain.data()), plain.size());
    if (n == 0) break;
    plain.resize(n);
    Bytes b(std::move(plain));
    if (handler_ && !handler_->on_bytes(b)) close_after_flush();
  }
  if (r == TlsSession::Result::kClosed) close_after_flush();
  request_flush();
  return true;
}

void Connection::request_flush() {
  if (!alive()) return;
  shard_.at_turn_end(this);
}

void Connection::on_turn_end() noexcept {
  if (resume_due_) {
    resume_due_ = false;
    deliver_stashed();
  }
  flush();
}

void Connection::flush() {
  if (send_in_flight_ || !reading_up()) return;
  bool can_produce = handler_ && (!tls_ || tls_->handshake_done());
  if (tls_) {
    if (can_produce) {
      OutputQueue plain;
      handler_->produce_output(plain, kFlushBudget);
      if (!plain.empty()) {
        std::string bytes;
        plain.copy_to(bytes);
        if (!tls_->write_plaintext(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) {
          die();
          return;
        }
      }
    }
    if (state_ == ConnState::kDraining && tls_->handshake_done()) tls_->shutdown();
    size_t pending = tls_->pending_ciphertext();
    if (pending > 0) {
      std::string cipher(pending, '\0');
      size_t n = tls_->read_ciphertext(reinterpret_cast<uint8_t*>(cipher.data()), cipher.size());
      cipher.resize(n);
      out_.append_ref(Bytes(std::move(cipher)));
    }
  } else if (can_produce) {
    handler_->produce_output(out_, kFlushBudget);
  }
  if (!out_.empty()) {
    submit_send();
  } else if (state_ == ConnState::kDraining) {
    shut_write();
  }
}

void Connection::submit_send() {
  // (on_send returns the block before it submits again; one still held is reused.)
  bool large = (send_msg_ && send_block_large_) || out_.pieces() > kInlineIov;
  size_t max_iov = large ? kMaxIov : kInlineIov;
  if (send_msg_ && large != send_block_large_) release_send_block();
  if (!send_msg_) send_msg_ = static_cast<msghdr*>(base::pool_allocate(send_block_bytes(max_iov)));
  send_block_large_ = large;
  auto* iov = reinterpret_cast<iovec*>(send_msg_ + 1);
  *send_msg_ = {};
  send_msg_->msg_iov = iov;
  send_msg_->msg_iovlen = out_.build_iovecs(iov, max_iov);
  io_uring_sqe* sqe = shard_.ring().get_sqe();
  io_uring_prep_sendmsg(sqe, fd_, send_msg_, MSG_NOSIGNAL);
  loop::use_socket(sqe, {fd_, direct_});
  loop::Ring::bind(sqe, &send_op_);
  send_in_flight_ = true;
}

void Connection::release_send_block() {
  if (!send_msg_) return;
  base::pool_deallocate(send_msg_, send_block_bytes(send_block_large_ ? kMaxIov : kInlineIov));
  send_msg_ = nullptr;
}

void Connection::on_send(int res, uint32_t) {
  send_in_flight_ = false;
  release_send_block();  // the kernel is done with it
  if (!alive()) {
    maybe_free();
    return;
  }
  if (state_ == ConnState::kWriteShut) {
    on_outq(res);  // nothing is sent after the FIN: this was the linger's SIOCOUTQ
    return;
  }
  if (res < 0) {
    if (res == -EINTR || res == -EAGAIN) {
      submit_send();
      return;
    }
    URINGRPC_LOG(base::LogLevel::kDebug, "conn %lu send: %s", (unsigned long)id_, std::strerror(-res));
    die();
    maybe_free();
    return;
  }
  out_.consume(static_cast<size_t>(res));
  if (!out_.empty()) {
    submit_send();  // a partial send: finish this batch before producing more
    return;
  }
  request_flush();
}

void Connection::close_after_flush() {
  if (!open()) return;
  move_to(ConnState::kDraining);
  request_flush();
}

void Connection::shut_write() {
  move_to(ConnState::kWriteShut);
  if (direct_) {
    io_uring_sqe* sqe = shard_.ring().get_sqe();
    loop::prep_socket_shutdown(sqe, {fd_, true}, SHUT_WR);
    loop::Ring::bind(sqe, nullptr);
  } else {
    ::shutdown(fd_, SHUT_WR);
  }
  linger_until_ms_ = shard_.now_ms() + kLingerMs;
  shard_.timers().arm(timer_, shard_.now_ms() + kLingerPollMs);
  if (!recv_armed_ && !waiting()) arm_recv();
}

void Connection::abort() { die(); maybe_free(); }

std::shared_ptr<const PeerIdentity> Connection::peer_identity() const {
  return tls_ ? tls_->peer_identity() : nullptr;
}

void Connection::on_timer(void* self) {
  auto* c = static_cast<Connection*>(self);
  if (c->state_ == ConnState::kWriteShut) {
    c->check_linger();
    return;
  }
  if (c->state_ == ConnState::kHandshaking && c->peer_bytes_unread()) {
    // The deadline is for a peer that stays silent or trickles. This one sent bytes the
    // shard has not read yet: no receive buffer was free (calls in progress hold them all;
    // e.g. 1,024 connections x 100 streams against 512 buffers), or a returned buffer went
    // to another connection's receive first. The server's own backpressure is not the
    // peer's fault: look again one period later. A peer whose bytes are read as they come
    // (the shard keeping up) has none unread and still meets the deadline.
    c->shard_.timers().arm(c->timer_, c->shard_.now_ms() + c->handshake_timeout_ms_);
    return;
  }
  if (c->state_ == ConnState::kHandshaking) {
    URINGRPC_LOG(base::LogLevel::kInfo, "conn %lu (%s): %s not completed in time; closing", (unsigned long)c->id_,
                 c->peer_.c_str(), c->tls_ && !c->tls_->handshake_done() ? "TLS handshake" : "HTTP/2 preface");
  }
  c->die();
  c->maybe_free();
}

// Closing while the peer has not yet acknowledged our last bytes could turn into a reset
// that discards them; once the send queue is empty, closing is safe.
void Connection::check_linger() {
  if (!direct_) {
    int unacked = 0;
    on_outq(ioctl(fd_, SIOCOUTQ, &unacked) != 0 ? -errno : unacked);
    return;
  }
  if (send_in_flight_) return;  // the previous question is still out
  io_uring_sqe* sqe = shard_.ring().get_sqe();
  loop::prep_socket_outq(sqe, {fd_, true});
  loop::Ring::bind(sqe, &send_op_);
  send_in_flight_ = true;
}

void Connection::on_outq(int unacked) {
  // An error (a unix socket has no SIOCOUTQ) counts as drained, as it always has.
  bool drained = unacked <= 0;
  if (!drained && shard_.now_ms() < linger_until_ms_) {
    shard_.timers().arm(timer_, shard_.now_ms() + kLingerPollMs);
    return;
  }
  die();
  maybe_free();
}

bool Connection::peer_bytes_unread() const {
  if (waiting()) return true;  // a receive failed for want of a buffer: bytes had arrived
  // A direct socket cannot be asked synchronously. Its multishot receive takes bytes as
  // they arrive whenever it is armed and a buffer is free, so bytes wait unread only
  // while it is paused or waiting for a buffer (above).
  if (direct_) return paused_;
  int unread = 0;
  return ioctl(fd_, FIONREAD, &unread) == 0 && unread > 0;
}

void Connection::die() {
  if (!alive()) return;
  move_to(ConnState::kClosing);
  stop_waiting();  // a closing connection takes no more buffers
  stash_.clear();
  shard_.timers().cancel(timer_);
  // Makes the armed receive and any in-flight send complete promptly. When neither is in
  // flight (the peer closed: its EOF ended the receive) close() alone will do, and one
  // syscall less per connection shows in a connection storm.
  if (recv_armed_ || send_in_flight_) {
    if (direct_) {
      io_uring_sqe* sqe = shard_.ring().get_sqe();
      loop::prep_socket_shutdown(sqe, {fd_, true}, SHUT_RDWR);
      loop::Ring::bind(sqe, nullptr);
    } else {
      ::shutdown(fd_, SHUT_RDWR);
    }
  }
  if (handler_) {
    ConnectionHandler* h = handler_;
    handler_ = nullptr;
    h->on_closed();
  }
}

void Connection::maybe_free() {
  if (state_ != ConnState::kClosing || recv_armed_ || send_in_flight_) return;
  move_to(ConnState::kDead);
  URINGRPC_PROBE(conn_close, fd_, id_, peer_.c_str());
  if (direct_) {
    // Frees the slot for the next accept; submitted before any accept that could need it.
    io_uring_sqe* sqe = shard_.ring().get_sqe();
    loop::prep_socket_close(sqe, {fd_, true});
    loop::Ring::bind(sqe, nullptr);
  } else {
    ::close(fd_);
  }
  fd_ = -1;
  // Not inside our own completion: at the end of the turn.
  shard_.defer([this] { delete this; });
}

}  // namespace uringrpc::transport
