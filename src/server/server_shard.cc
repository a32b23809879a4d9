// Accepting connections on a shard (under the server-wide connection cap, backing off when
// descriptors run out) and taking them down at shutdown. Server::start builds one
// ServerShard per shard thread; Server::stop reaches it through post_shutdown.
#include "server/server_shard.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/probes.h"
#include "loop/cpu_steering.h"
#include "loop/socket_ops.h"

namespace uringrpc::server {
namespace {
// Back-off after EMFILE/ENFILE/ENOBUFS/ENOMEM: short at first (an fd is often freed soon),
// doubling up to a second so a process that stays out of descriptors is not spun on.
constexpr uint64_t kMinBackoffMs = 10;
constexpr uint64_t kMaxBackoffMs = 1000;
// While paused at the cap, how often a shard looks whether a slot has freed up elsewhere.
constexpr uint64_t kResumePollMs = 20;
// Accepts in a row before going back to the loop (the poll fires again at once if more wait).
constexpr int kAcceptBatch = 32;

bool out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }
// IORING_ACCEPT_DONTWAIT (Linux 6.10+; not in liburing 2.3's headers): -EAGAIN at once when
// no connection waits, instead of the ring waiting for one.
constexpr uint16_t kAcceptDontWait = 1u << 1;
}  // namespace

ServerShard::ServerShard(const ShardSetup& setup, std::vector<ListenSocket> sockets)
    : setup_(setup), shard_(setup.loop) {
  for (auto& s : sockets) acceptors_.push_back(std::make_unique<Acceptor>(*this, std::move(s)));
  grace_timer_.set_callback(&ServerShard::grace_timer_fired, this);
  resume_timer_.set_callback(&ServerShard::resume_timer_fired, this);
}

ServerShard::~ServerShard() { shard_.join(); }

void ServerShard::start() {
  shard_.start([this] {
    if (setup_.cpu >= 0) {
      if (int err = loop::pin_current_thread(setup_.cpu)) {
        URINGRPC_LOG(base::LogLevel::kWarn, "shard %u: cannot pin to CPU %d: %s; it runs unpinned",
                     setup_.loop.index, setup_.cpu, std::strerror(err));
      }
    }
    for (auto& a : acceptors_) a->arm();
  });
}

ServerShard::Acceptor::Acceptor(ServerShard& owner, ListenSocket socket)
    : owner_(owner), socket_(std::move(socket)) {
  backoff_.set_callback(&Acceptor::retry, this);
  // Capped accepts are non-blocking accept4 calls after a readiness poll: on a shared
  // listener another shard may take the connection between the poll and the accept, and
  // that must be EAGAIN, not a shard thread blocked in accept.
  if (owner_.capped()) {
    int fl = ::fcntl(socket_.fd, F_GETFL);
    if (fl >= 0) ::fcntl(socket_.fd, F_SETFL, fl | O_NONBLOCK);
  }
  if (owner_.setup_.direct) {
    direct_ = std::make_unique<DirectAccept[]>(kDirectAccepts);
    for (unsigned i = 0; i < kDirectAccepts; ++i) direct_[i].acceptor = this;
  }
}

void ServerShard::Acceptor::arm() {
  if (armed_ || paused_ || backoff_.armed() || owner_.shutting_down_) return;
  if (socket_.shared && owner_.table_full()) {
    // Accepting now would take a connection only to have the kernel close it, while
    // another shard on this listener has room for it.
    table_full_ = true;
    return;
  }
  if (owner_.setup_.direct && !owner_.capped()) {
    accept_direct(false);
    return;
  }
  if (direct_armed_ > 0) return;  // capped: an accept after the poll is still out
  io_uring_sqe* sqe = owner_.shard_.ring().get_sqe();
  if (owner_.capped()) {
    io_uring_prep_poll_add(sqe, socket_.fd, POLLIN);
  } else {
    io_uring_prep_multishot_accept(sqe, socket_.fd, nullptr, nullptr, SOCK_CLOEXEC);
  }
  loop::Ring::bind(sqe, this);
  armed_ = true;
}

void ServerShard::Acceptor::cancel() {
  owner_.shard_.timers().cancel(backoff_);
  paused_ = false;
  table_full_ = false;
  if (direct_) {
    for (unsigned i = 0; i < kDirectAccepts; ++i) {
      if (!direct_[i].armed) continue;
      io_uring_sqe* sqe = owner_.shard_.ring().get_sqe();
      io_uring_prep_cancel(sqe, &direct_[i], 0);
      loop::Ring::bind(sqe, nullptr);
    }
  }
  if (!armed_) return;
  io_uring_sqe* sqe = owner_.shard_.ring().get_sqe();
  io_uring_prep_cancel(sqe, this, 0);
  loop::Ring::bind(sqe, nullptr);
}

void ServerShard::Acceptor::resume() {
  if (!paused_) return;
  // Still at the cap: skip the poll round trip and look again later.
  if (owner_.setup_.open_connections->load(std::memory_order_relaxed) >= owner_.setup_.max_connections) {
    owner_.pause_accepting();
    return;
  }
  paused_ = false;
  arm();
}

void ServerShard::Acceptor::table_has_room() {
  if (!table_full_) return;
  table_full_ = false;
  arm();
}

void ServerShard::Acceptor::retry(void* self) { static_cast<Acceptor*>(self)->arm(); }

void ServerShard::Acceptor::back_off(int err) {
  owner_.accept_failed(err);
  backoff_ms_ = backoff_ms_ == 0 ? kMinBackoffMs : std::min(backoff_ms_ * 2, kMaxBackoffMs);
  owner_.shard_.timers().arm(backoff_, owner_.shard_.now_ms() + backoff_ms_);
}

void ServerShard::Acceptor::on_complete(int res, uint32_t flags) noexcept {
  if (!(flags & IORING_CQE_F_MORE)) armed_ = false;
  if (owner_.capped()) {
    // The readiness poll. Its errors are not accept errors: ECANCELED is our own cancel;
    // anything else is retried after a pause rather than re-polled in a tight loop.
    if (owner_.shutting_down_) {
      owner_.maybe_exit();
    } else if (res >= 0 && owner_.setup_.direct) {
      accept_direct(true);
    } else if (res >= 0) {
      try_accepts();
    } else if (res != -ECANCELED) {
      URINGRPC_LOG(base::LogLevel::kWarn, "poll on listening socket: %s", std::strerror(-res));
      owner_.shard_.timers().arm(backoff_, owner_.shard_.now_ms() + kMaxBackoffMs);
    }
    return;
  }
  if (res >= 0) {
    if (owner_.shutting_down_ && owner_.grace_expired_) {
      owner_.close_accepted(res);
    } else if (owner_.shutting_down_) {
      // Accepted in the window before our cancel took effect. Dropping it would reset a
      // client whose connect succeeded (an adopted socket is never shut down, so the
      // window is real there); it is served like the connections open at stop: GOAWAY,
      // its new streams refused (gRPC clients retry them elsewhere).
      owner_.on_accepted(res, socket_);
      owner_.connections_.back()->start_graceful_shutdown();
    } else {
      backoff_ms_ = 0;
      owner_.accept_succeeded();
      owner_.on_accepted(res, socket_);
    }
  } else if (out_of_resources(-res) && !owner_.shutting_down_) {
    // The connection stays in the listen backlog; existing connections keep working.
    // Should the kernel keep the multishot accept armed, cancel it: re-arming happens
    // when the back-off expires (arm() refuses until the cancel's last CQE is in).
    if (armed_) cancel();
    back_off(-res);
    return;
  } else if (res != -ECANCELED && res != -EINVAL && !owner_.shutting_down_) {
    URINGRPC_LOG(base::LogLevel::kWarn, "accept: %s", std::strerror(-res));
  }
  if (owner_.shutting_down_) {
    owner_.maybe_exit();
    return;
  }
  // EINVAL: the listening socket was shut down by stop(); the shutdown message follows.
  if (!armed_ && res != -EINVAL) arm();
}

// Accepting under max_connections. A multishot accept cannot be stopped at an exact count
// (completions already queued arrive after a cancel), and accepting then closing the
// surplus would refuse clients the backlog could hold. A single-shot accept armed with a
// slot reserved for it would never go over the cap either, but its slot would sit idle
// while its listener is: with SO_REUSEPORT the kernel picks a shard's listener by hash, so
// a connection hashed to another shard could wait below the cap. So the shard waits for
// readiness, takes a slot only when a connection is waiting, and accepts without blocking;
// at the cap it pauses, and the connections wait in the kernel's backlog.
void ServerShard::Acceptor::try_accepts() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    if (!owner_.reserve_connection()) {
      paused_ = true;
      owner_.pause_accepting();
      return;
    }
    int fd = ::accept4(socket_.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      owner_.release_connection();
      if (err == EAGAIN || err == EWOULDBLOCK) break;  // backlog empty, or another shard took it
      if (err == EINTR || err == ECONNABORTED) continue;
      if (out_of_resources(err)) {
        back_off(err);
        return;
      }
      if (err == EINVAL) return;  // the listener was shut down by stop()
      URINGRPC_LOG(base::LogLevel::kWarn, "accept: %s", std::strerror(err));
      owner_.shard_.timers().arm(backoff_, owner_.shard_.now_ms() + kMaxBackoffMs);
      return;
    }
    backoff_ms_ = 0;
    owner_.accept_succeeded();
    owner_.on_accepted(fd, socket_);  // holds the slot reserve_connection() took
  }
  arm();
}

// Direct descriptors: single-shot accepts into the ring's table. Without a cap every
// idle one of kDirectAccepts is armed (on a shared listener no more than the table has
// room for). after_poll (capped): a slot of the cap is taken first, and the one accept
// does not wait, so a connection another shard took from a shared listener gives -EAGAIN
// (back to the poll) rather than an accept that holds the slot while its listener is quiet.
void ServerShard::Acceptor::accept_direct(bool after_poll) {
  if (socket_.shared && owner_.table_full()) {
    table_full_ = true;
    return;
  }
  if (after_poll) {
    if (direct_[0].armed) return;
    if (!owner_.reserve_connection()) {
      paused_ = true;
      owner_.pause_accepting();
      return;
    }
    submit_direct(direct_[0], true);
    return;
  }
  size_t room = kDirectAccepts;
  if (socket_.shared) room = owner_.shard_.ring().direct_slots() - owner_.connections_.size();
  for (unsigned i = 0; i < kDirectAccepts && direct_armed_ < room; ++i) {
    if (!direct_[i].armed) submit_direct(direct_[i], false);
  }
}

void ServerShard::Acceptor::submit_direct(DirectAccept& op, bool dont_wait) {
  io_uring_sqe* sqe = owner_.shard_.ring().get_sqe();
  op.peer_len = sizeof op.peer;
  // No SOCK_CLOEXEC: a direct socket is no descriptor, and the kernel refuses the flag.
  io_uring_prep_accept_direct(sqe, socket_.fd, reinterpret_cast<sockaddr*>(&op.peer), &op.peer_len, 0,
                              IORING_FILE_INDEX_ALLOC - 1);  // liburing 2.3 adds the 1 back
  if (dont_wait) sqe->ioprio |= kAcceptDontWait;
  loop::Ring::bind(sqe, &op);
  op.armed = true;
  ++direct_armed_;
}

void ServerShard::Acceptor::on_direct_accept(DirectAccept& op, int res) {
  op.armed = false;
  --direct_armed_;
  const bool capped = owner_.capped();
  if (res >= 0) {
    if (owner_.shutting_down_ && owner_.grace_expired_) {
      owner_.close_accepted(res);
      if (capped) owner_.release_connection();
    } else {
      if (!owner_.shutting_down_) {
        backoff_ms_ = 0;
        owner_.accept_succeeded();
      }
      owner_.on_accepted(res, socket_, &op.peer);  // holds the cap's slot taken for it
      // As in on_complete: accepted just before our cancel, served under the GOAWAY.
      if (owner_.shutting_down_) owner_.connections_.back()->start_graceful_shutdown();
    }
  } else {
    if (capped) owner_.release_connection();
    if (owner_.shutting_down_) {
      // nothing: the cancel's completion, or a failure after stop began
    } else if (res == -EAGAIN) {
      arm();  // capped: the backlog is empty (or another shard took it); poll again
      return;
    } else if (res == -ENFILE && owner_.connections_.size() >= owner_.shard_.ring().direct_slots()) {
      // The table is full: the kernel accepted the connection and closed it (a clean
      // refusal the client sees at once, rather than a wait in the backlog). Each accept
      // takes one waiting connection, so accepting again cannot spin.
      owner_.refused();
    } else if (out_of_resources(-res)) {
      if (!backoff_.armed()) back_off(-res);
      return;
    } else if (res != -ECANCELED && res != -EINVAL) {
      URINGRPC_LOG(base::LogLevel::kWarn, "accept: %s", std::strerror(-res));
    }
  }
  if (owner_.shutting_down_) {
    owner_.maybe_exit();
    return;
  }
  // EINVAL: the listening socket was shut down by stop(); the shutdown message follows.
  if (res == -EINVAL || paused_ || backoff_.armed()) return;
  // Capped: drain the backlog while the cap has room (EAGAIN polls again).
  accept_direct(capped);
}

bool ServerShard::reserve_connection() {
  auto* open = setup_.open_connections;
  size_t n = open->load(std::memory_order_relaxed);
  do {
    if (n >= setup_.max_connections) return false;
  } while (!open->compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

void ServerShard::release_connection() {
  setup_.open_connections->fetch_sub(1, std::memory_order_relaxed);
  for (auto& a : acceptors_) a->resume();
}

// A slot freed on this shard resumes its acceptors at once (release_connection). One freed
// on another shard is noticed by this timer instead: waking the paused shards from the
// closing one would mean a post() (a lock and an eventfd write) to every sibling on each
// close at the cap; a poll that runs only while paused costs less and adds at most
// kResumePollMs to the wait of a connection that is queued anyway.
void ServerShard::pause_accepting() {
  if (!resume_timer_.armed() && !shutting_down_) {
    shard_.timers().arm(resume_timer_, shard_.now_ms() + kResumePollMs);
  }
}

void ServerShard::resume_timer_fired(void* self) {
  auto* s = static_cast<ServerShard*>(self);
  for (auto& a : s->acceptors_) a->resume();
}

void ServerShard::accept_failed(int err) {
  ++accept_failures_;
  if (accept_failing_) return;
  accept_failing_ = true;
  accept_failures_ = 1;
  URINGRPC_LOG(base::LogLevel::kWarn,
               "accept: %s; open connections are still served, new ones wait in the listen "
               "backlog while accepting retries with back-off (up to %lu ms)",
               std::strerror(err), (unsigned long)kMaxBackoffMs);
}

void ServerShard::accept_succeeded() {
  if (!accept_failing_) return;
  accept_failing_ = false;
  URINGRPC_LOG(base::LogLevel::kInfo, "accepting again after %llu failed attempts",
               (unsigned long long)accept_failures_);
}

void ServerShard::refused() {
  rpc::ShardMetrics* metrics = setup_.rpc->metrics ? &setup_.rpc->metrics[shard_.index()] : nullptr;
  if (metrics) metrics->connections_refused.add(1);
  ++accept_failures_;
  if (accept_failing_) return;
  accept_failing_ = true;
  accept_failures_ = 1;
  URINGRPC_LOG(base::LogLevel::kWarn,
               "shard %u: direct descriptor table full (%u connections); new connections are closed at "
               "accept until one ends (ListenOptions::direct_slots_per_shard)",
               shard_.index(), shard_.ring().direct_slots());
}

void ServerShard::close_accepted(int fd) {
  if (!setup_.direct) {
    ::close(fd);
    return;
  }
  io_uring_sqe* sqe = shard_.ring().get_sqe();
  loop::prep_socket_close(sqe, {fd, true});
  loop::Ring::bind(sqe, nullptr);
}

void ServerShard::on_accepted(int fd, ListenSocket& socket, const sockaddr_storage* peer) {
  // The port's newest TLS context (a reload may have replaced it): see TlsContextSlot.
  auto* conn = transport::Connection::create(shard_, {fd, setup_.direct}, peer, socket.tls.current(),
                                             setup_.tls_handshake_timeout_ms);
  URINGRPC_PROBE(conn_accept, fd, conn->id(), conn->peer().c_str());
  auto* calls = new rpc::ConnectionCalls(shard_, *conn, *setup_.rpc, setup_.http2);
  calls->set_list_slot(static_cast<uint32_t>(connections_.size()));
  connections_.push_back(calls);
  rpc::ShardMetrics* metrics = setup_.rpc->metrics ? &setup_.rpc->metrics[shard_.index()] : nullptr;
  if (metrics) metrics->connections_accepted.add(1);
  calls->set_on_gone(&ServerShard::connection_gone, this);
  conn->set_handler(&calls->session());
  conn->start();
}

// The last connection takes the leaving one's slot: O(1) however many the shard holds
// (a search of the list cost each close a scan of all of them: ~5·10⁹ steps to close
// 100,000). The list's order carries no meaning.
// (The leaving connection is already freed: only its slot number is used.)
void ServerShard::remove_connection(uint32_t slot) {
  rpc::ConnectionCalls* last = connections_.back();
  connections_.pop_back();
  if (slot == connections_.size()) return;  // it was the last one
  connections_[slot] = last;
  last->set_list_slot(slot);
}

void ServerShard::connection_gone(void* self, uint32_t list_slot) {
  auto& s = *static_cast<ServerShard*>(self);
  if (s.setup_.rpc->metrics) s.setup_.rpc->metrics[s.shard_.index()].connections_closed.add(1);
  s.remove_connection(list_slot);
  // The slot of the cap stays taken until the connection and every call on it are freed.
  if (s.capped()) s.release_connection();
  if (s.setup_.direct) {
    for (auto& a : s.acceptors_) a->table_has_room();
  }
  s.maybe_exit();
}

void ServerShard::post_shutdown(uint64_t deadline_ms) {
  // Begun at the end of the turn that takes the message, not inside it: what the server's
  // stop hooks posted ahead of it (a health service waking its Watch streams) resumes its
  // handlers in that turn first, so their last messages (NOT_SERVING) leave before the
  // GOAWAY rather than after it.
  shard_.post([this, deadline_ms] { shard_.defer([this, deadline_ms] { begin_shutdown(deadline_ms); }); });
}

void ServerShard::begin_shutdown(uint64_t deadline_ms) {
  if (!shutting_down_) {
    shutting_down_ = true;
    shard_.timers().cancel(resume_timer_);
    for (auto& a : acceptors_) a->cancel();
    // Streams that reach us before the client has read the GOAWAY notice are served (the
    // notice's last-stream-id 2^31-1 says they may be), not refused: a proxy that sent one
    // on a pooled connection cannot always retry a refused POST (nginx answers 502,
    // HAProxy 2.6 passes the RST_STREAM on; tests/fleet/rolling_restart_test.py). They
    // get the same grace as the calls in flight; the final GOAWAY closes the window.
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
