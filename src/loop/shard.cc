// The shard thread's loop. See shard.h for the shape of a turn.
#include "loop/shard.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <future>
#include <stdexcept>

#include "base/log.h"
#include "base/probes.h"

namespace uringrpc::loop {
namespace {
thread_local Shard* t_current = nullptr;
}

Shard::Shard(const ShardConfig& config)
    : config_(config), timers_(TimerWheel::monotonic_now_ms()) {
  event_fd_ = eventfd(0, EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::runtime_error("eventfd failed");
  link_ = std::make_shared<::uringrpc::detail::ShardLink>();
  link_->shard = this;
  link_->index = config.index;
}

namespace {
// After this, posts through the link are dropped (uringrpc/wake.h): the loop is over.
void unlink(::uringrpc::detail::ShardLink& link) {
  std::lock_guard<std::mutex> lock(link.mu);
  link.shard = nullptr;
}
}  // namespace

Shard::~Shard() {
  if (thread_.joinable()) thread_.join();
  unlink(*link_);
  // Handlers' leftovers (Bytes in closures) may still point into the buffer ring.
  inbox_.clear();
  deferred_.clear();
  buffers_.reset();
  ring_.reset();
  if (event_fd_ >= 0) close(event_fd_);
}

Shard* Shard::current() noexcept { return t_current; }

void Shard::start(std::function<void()> on_start) {
  std::promise<void> ready;
  auto made = ready.get_future();
  thread_ = std::thread([this, on_start = std::move(on_start), ready = std::move(ready)]() mutable {
    char name[16];
    std::snprintf(name, sizeof name, "uringrpc/%u", config_.index);
    pthread_setname_np(pthread_self(), name);
    try {
      ring_ = std::make_unique<Ring>(config_.ring_entries);
      ring_->set_batch_wait(config_.batch_wait_usec, config_.batch_wait_events);
      if (config_.direct_slots > 0) ring_->register_direct_table(config_.direct_slots);
      buffers_ = std::make_unique<BufferRing>(ring_->raw(), config_.recv_buffer_size, config_.recv_buffer_count);
    } catch (...) {
      ready.set_exception(std::current_exception());
      return;
    }
    ready.set_value();
    t_current = this;
    wakeup_.arm();
    on_start();
    loop();
    unlink(*link_);
    t_current = nullptr;
  });
  made.get();
}

void Shard::join() {
  if (thread_.joinable()) thread_.join();
}

void Shard::at_turn_end(TurnHook* hook) {
  if (hook->queued_) return;
  hook->queued_ = true;
  hooks_.push_back(hook);
}

void Shard::unschedule(std::coroutine_handle<> h) {
  std::erase(ready_, h);
}

void Shard::post(std::function<void()> fn) {
  // The wake-up is written under the lock, not after it: once fn is in the inbox the shard
  // may run it (woken by anything), drop its last hold, exit and be destroyed, closing
  // event_fd_. run_inbox() takes this lock, so the write is done before fn can run. Only
  // stop and offload completions post; never the RPC path. The lock, not the eventfd, is
  // what orders fn's captures before the shard runs it, so ThreadSanitizer sees the
  // hand-off as it is and needs no annotation here.
  // Only the post that finds the inbox empty writes: a non-empty inbox already has a write
  // that run_inbox() has not consumed (it empties the inbox under this lock), so a burst of
  // posts (a publisher waking thousands of handlers, uringrpc/wake.h) costs one write.
  std::lock_guard<std::mutex> lock(inbox_mu_);
  bool was_empty = inbox_.empty();
  inbox_.push_back(std::move(fn));
  if (!was_empty) return;
  uint64_t one = 1;
  ssize_t n = ::write(event_fd_, &one, sizeof one);
  (void)n;
}

void Shard::InboxWakeup::arm() {
  io_uring_sqe* sqe = shard_.ring_->get_sqe();
  io_uring_prep_read(sqe, shard_.event_fd_, &value_, sizeof value_, 0);
  Ring::bind(sqe, this);
}

void Shard::InboxWakeup::on_complete(int res, uint32_t) noexcept {
  if (res < 0 && res != -EINTR && res != -EAGAIN) {
    URINGRPC_LOG(base::LogLevel::kError, "shard inbox read failed: %d", res);
  }
  shard_.run_inbox();
  arm();
}

void Shard::run_inbox() {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_running_.swap(inbox_);
  }
  for (auto& fn : inbox_running_) fn();
  inbox_running_.clear();
}

void Shard::run_ready() {
  // Drain completely: handler frames are destroyed only from deferred work, which runs
  // after this, so no handle of a destroyed frame can be left queued.
  while (!ready_.empty()) {
    running_.swap(ready_);
    for (auto h : running_) h.resume();
    running_.clear();
  }
}

void Shard::run_turn_end() {
  while (!hooks_.empty() || !deferred_.empty()) {
    hooks_running_.swap(hooks_);
    for (TurnHook* h : hooks_running_) {
      h->queued_ = false;
      h->on_turn_end();
    }
    hooks_running_.clear();
    // Swapped, not moved: both vectors keep their capacity, so a steady loop never
    // allocates here (a moved-from vector starts over at zero every turn).
    deferred_running_.swap(deferred_);
    for (auto& fn : deferred_running_) fn();
    deferred_running_.clear();
  }
}

void Shard::loop() {
  for (;;) {
    run_ready();
    run_turn_end();
    if (exit_requested_ && holds_ == 0 && ready_.empty()) break;
    int64_t timeout = ready_.empty() ? timers_.ms_until_next(timers_.monotonic_now_ms()) : 0;
    unsigned completions = ring_->submit_and_wait(timeout);
    URINGRPC_PROBE(loop_wakeup, config_.index, completions);
    timers_.advance(TimerWheel::monotonic_now_ms());
  }
}

}  // namespace uringrpc::loop
