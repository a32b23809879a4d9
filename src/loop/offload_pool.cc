// Offload pool threads, and the glue behind uringrpc::offload() and sleep_for().
#include "loop/offload_pool.h"

#include <pthread.h>

#include <cstdio>

#include "loop/shard.h"
#include "uringrpc/errors.h"

namespace uringrpc::loop {

OffloadPool::OffloadPool(unsigned threads) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] {
      char name[16];
      std::snprintf(name, sizeof name, "uringrpc-off/%u", i);
      pthread_setname_np(pthread_self(), name);
      worker();
    });
  }
}

OffloadPool::~OffloadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void OffloadPool::submit(std::shared_ptr<::uringrpc::detail::OffloadOp> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(op));
  }
  cv_.notify_one();
}

void OffloadPool::worker() {
  for (;;) {
    std::shared_ptr<::uringrpc::detail::OffloadOp> op;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    op->run_on_pool();
    auto* shard = static_cast<Shard*>(op->shard_);
    // The op (and the handler's function inside it) is released on the shard.
    shard->post([op = std::move(op)] {
      auto* s = static_cast<Shard*>(op->shard_);
      s->offload_finished();
      if (op->waiter_) s->schedule(op->waiter_);
    });
  }
}

}  // namespace uringrpc::loop

namespace uringrpc {
namespace detail {

void* current_shard_for_offload() {
  auto* shard = loop::Shard::current();
  if (!shard) throw UsageError("uringrpc::offload must be awaited from a handler on a shard");
  return shard;
}

void submit_offload(std::shared_ptr<OffloadOp> op) {
  auto* shard = static_cast<loop::Shard*>(op->shard_);
  shard->offload_started();
  shard->offload_pool()->submit(std::move(op));
}

// A timer-wheel entry that resumes the sleeping coroutine on its shard.
class SleepOp {
 public:
  SleepOp(loop::Shard& shard, std::coroutine_handle<> h) : shard_(shard), h_(h) {
    timer_.set_callback(&SleepOp::fire, this);
  }
  void arm(uint64_t deadline_ms) { shard_.timers().arm(timer_, deadline_ms); }

 private:
  static void fire(void* self) {
    auto* op = static_cast<SleepOp*>(self);
    op->shard_.schedule(op->h_);
  }
  loop::Shard& shard_;
  std::coroutine_handle<> h_;
  loop::Timer timer_;
};

void SleepOpDeleter::operator()(SleepOp* op) const noexcept { delete op; }

}  // namespace detail

void SleepAwaiter::await_suspend(std::coroutine_handle<> h) {
  auto* shard = loop::Shard::current();
  if (!shard) throw UsageError("uringrpc::sleep_for must be awaited from a handler on a shard");
  op_.reset(new detail::SleepOp(*shard, h));
  // Round up, plus one: the wheel's clock is floored to whole milliseconds, so this never
  // wakes before the requested time has passed.
  auto ms = (duration_.count() + 999999) / 1000000;
  op_->arm(loop::TimerWheel::monotonic_now_ms() + static_cast<uint64_t>(ms) + 1);
}

}  // namespace uringrpc
