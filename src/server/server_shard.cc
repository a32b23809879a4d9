// Accepting connections on a shard and taking them down at shutdown.
#include "server/server_shard.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "loop/log.h"

namespace uringrpc::server {
namespace {
constexpr uint64_t kAcceptBackoffMs = 100;
}

ServerShard::ServerShard(const ShardSetup& setup, std::vector<ListenSocket> sockets)
    : setup_(setup), shard_(setup.loop) {
  for (auto& s : sockets) acceptors_.push_back(std::make_unique<Acceptor>(*this, std::move(s)));
  grace_timer_.set_callback(&ServerShard::grace_timer_fired, this);
}

ServerShard::~ServerShard() { shard_.join(); }

void ServerShard::start() {
  shard_.start([this] {
    for (auto& a : acceptors_) a->arm();
  });
}

void ServerShard::Acceptor::arm() {
  if (armed_ || owner_.shutting_down_) return;
  io_uring_sqe* sqe = owner_.shard_.ring().get_sqe();
  io_uring_prep_multishot_accept(sqe, socket_.fd, nullptr, nullptr, SOCK_CLOEXEC);
  loop::Ring::bind(sqe, this);
  armed_ = true;
}

void ServerShard::Acceptor::cancel() {
  if (!armed_) return;
  io_uring_sqe* sqe = owner_.shard_.ring().get_sqe();
  io_uring_prep_cancel(sqe, this, 0);
  loop::Ring::bind(sqe, nullptr);
}

void ServerShard::Acceptor::retry(void* self) { static_cast<Acceptor*>(self)->arm(); }

void ServerShard::Acceptor::on_complete(int res, uint32_t flags) noexcept {
  if (!(flags & IORING_CQE_F_MORE)) armed_ = false;
  if (res >= 0) {
    if (owner_.shutting_down_) {
      ::close(res);
    } else {
      owner_.on_accepted(res, socket_);
    }
  } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    // Out of descriptors or memory: existing connections keep working; try again soon.
    URINGRPC_LOG(loop::LogLevel::kWarn, "accept: %s; retrying in %lu ms", std::strerror(-res),
                 (unsigned long)kAcceptBackoffMs);
    if (!armed_) {
      backoff_.set_callback(&Acceptor::retry, this);
      owner_.shard_.timers().arm(backoff_, owner_.shard_.now_ms() + kAcceptBackoffMs);
    }
    return;
  } else if (res != -ECANCELED && res != -EINVAL && !owner_.shutting_down_) {
    URINGRPC_LOG(loop::LogLevel::kWarn, "accept: %s", std::strerror(-res));
  }
  if (owner_.shutting_down_) {
    owner_.maybe_exit();
    return;
  }
  // EINVAL: the listening socket was shut down by stop(); the shutdown message follows.
  if (!armed_ && res != -EINVAL) arm();
}

void ServerShard::on_accepted(int fd, const ListenSocket& socket) {
  auto* conn = transport::Connection::create(shard_, fd, socket.tls, setup_.tls_handshake_timeout_ms);
  auto* calls = new rpc::ConnectionCalls(shard_, *conn, *setup_.rpc, setup_.http2);
  connections_.push_back(calls);
  calls->set_on_gone([this, calls] {
    std::erase(connections_, calls);
    maybe_exit();
  });
  conn->set_handler(&calls->session());
  conn->start();
}

void ServerShard::post_shutdown(uint64_t deadline_ms) {
  shard_.post([this, deadline_ms] { begin_shutdown(deadline_ms); });
}

void ServerShard::begin_shutdown(uint64_t deadline_ms) {
  if (!shutting_down_) {
    shutting_down_ = true;
    for (auto& a : acceptors_) a->cancel();
    for (auto* c : connections_) c->start_graceful_shutdown();
  }
  if (!grace_expired_ && (!grace_timer_.armed() || deadline_ms < grace_timer_.deadline_ms())) {
    shard_.timers().arm(grace_timer_, deadline_ms);
  }
  maybe_exit();
}

void ServerShard::grace_timer_fired(void* self) { static_cast<ServerShard*>(self)->on_grace_expired(); }

void ServerShard::on_grace_expired() {
  grace_expired_ = true;
  const Status cancelled{StatusCode::UNAVAILABLE, "Cancelling all calls"};
  // Copy: cancelling may end connections, which removes them from the list later.
  auto conns = connections_;
  for (auto* c : conns) {
    c->cancel_all(cancelled);
    c->session().request_flush();
  }
  // Streams end once their trailers are out; connections then close after the final
  // GOAWAY. A peer that never acks our PING is closed here, after what is queued.
  shard_.defer([this] {
    for (auto* c : connections_) c->close_when_flushed();
  });
  maybe_exit();
}

void ServerShard::maybe_exit() {
  if (!shutting_down_ || !connections_.empty()) return;
  for (auto& a : acceptors_) {
    if (a->armed()) return;
  }
  shard_.timers().cancel(grace_timer_);
  shard_.request_exit();
}

}  // namespace uringrpc::server
