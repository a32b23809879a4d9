// Shard: one thread, one io_uring, one buffer ring, one timer wheel. Everything a shard
// owns is touched only by its thread; other threads reach it through post().
// A loop turn: run ready coroutines → run turn-end hooks (batched sends) → one
// io_uring_enter (waiting until the next timer at most) → dispatch completions → timers.
#pragma once

#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loop/buffer_ring.h"
#include "loop/completion.h"
#include "loop/ring.h"
#include "loop/timer_wheel.h"

namespace uringrpc::loop {
class Shard;
}

namespace uringrpc::detail {
// What outlives a Shard for the threads that post to it through uringrpc/wake.h (ShardRef,
// Event, Promise, Channel): `shard` is null once the shard's loop has ended, and post()
// through the link takes `mu`, so no post can reach a destroyed shard.
struct ShardLink {
  std::mutex mu;
  loop::Shard* shard = nullptr;
  unsigned index = 0;
};
}  // namespace uringrpc::detail

namespace uringrpc::loop {

class OffloadPool;

// Something that wants one call at the end of the current loop turn (a connection with
// output to flush). Queued at most once per turn.
class TurnHook {
 public:
  virtual void on_turn_end() noexcept = 0;

 protected:
  ~TurnHook() = default;

 private:
  friend class Shard;
  bool queued_ = false;
};

// The user's options (recv buffers, batch wait) have no defaults here: they are
// ServerOptions', filled in by server::shard_config() (server/layer_options.h).
struct ShardConfig {
  unsigned index = 0;
  unsigned ring_entries = 4096;  // not an option: the loop's own sizing
  uint32_t recv_buffer_size;
  uint32_t recv_buffer_count;
  unsigned batch_wait_usec;  // see Ring::set_batch_wait
  unsigned batch_wait_events;
  // Slots of the ring's sparse registered file table (direct descriptors); 0: none.
  unsigned direct_slots = 0;
  OffloadPool* offload_pool = nullptr;
};

class Shard {
 public:
  explicit Shard(const ShardConfig& config);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Starts the thread (named "uringrpc/N"), which makes its ring (SINGLE_ISSUER ties a
  // ring to the thread that creates it), runs `on_start`, then the loop until
  // request_exit() and no hold is left. Returns once the ring exists; rethrows its error.
  void start(std::function<void()> on_start);
  void join();
  // The shard whose thread this is, or null on other threads.
  static Shard* current() noexcept;
  unsigned index() const noexcept { return config_.index; }

  // --- own thread only
  Ring& ring() noexcept { return *ring_; }
  BufferRing& buffers() noexcept { return *buffers_; }
  TimerWheel& timers() noexcept { return timers_; }
  // The clock, read now: the wheel's own time is that of its last advance, which can be
  // as old as the loop's last sleep in io_uring_enter.
  uint64_t now_ms() const noexcept { return TimerWheel::monotonic_now_ms(); }
  void schedule(std::coroutine_handle<> h) { ready_.push_back(h); }
  // Drops a queued resumption of h (its frame is about to be destroyed).
  void unschedule(std::coroutine_handle<> h);
  void at_turn_end(TurnHook* hook);
  // Runs fn at the end of this turn, after completions and hooks: objects are never freed
  // inside their own callbacks.
  void defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }
  void request_exit() noexcept { exit_requested_ = true; }
  // Work that must finish before the thread may end (a connection's last in-flight
  // requests, offloaded functions): the loop exits only at zero holds.
  void hold() noexcept { ++holds_; }
  void release() noexcept { --holds_; }
  void offload_started() noexcept { hold(); }
  void offload_finished() noexcept { release(); }
  OffloadPool* offload_pool() const noexcept { return config_.offload_pool; }

  // --- any thread
  // Runs fn on the shard's thread in a coming loop turn.
  void post(std::function<void()> fn);
  // For uringrpc/wake.h: posting through the link is safe after the shard is gone.
  const std::shared_ptr<::uringrpc::detail::ShardLink>& link() const noexcept { return link_; }

 private:
  class InboxWakeup final : public Completion {
   public:
    explicit InboxWakeup(Shard& s) : shard_(s) {}
    void arm();
    void on_complete(int res, uint32_t flags) noexcept override;

   private:
    Shard& shard_;
    uint64_t value_ = 0;
  };

  void loop();
  void run_ready();
  void run_turn_end();
  void run_inbox();

  ShardConfig config_;
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<BufferRing> buffers_;
  TimerWheel timers_;
  std::vector<std::coroutine_handle<>> ready_;
  std::vector<std::coroutine_handle<>> running_;
  std::vector<TurnHook*> hooks_;
  std::vector<TurnHook*> hooks_running_;
  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> deferred_running_;
  bool exit_requested_ = false;
  int holds_ = 0;

  int event_fd_ = -1;
  InboxWakeup wakeup_{*this};
  std::mutex inbox_mu_;  // only post(): stop, offload completions; never the RPC path
  std::vector<std::function<void()>> inbox_;
  std::vector<std::function<void()>> inbox_running_;

  std::shared_ptr<::uringrpc::detail::ShardLink> link_;
  std::thread thread_;
};

}  // namespace uringrpc::loop
