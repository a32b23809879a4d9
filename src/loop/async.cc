// The glue behind the public awaiters of uringrpc/async.h: sleep_for() arms a timer on the
// awaiting shard's wheel, offload() queues work on the shard's OffloadPool. Called from
// handler coroutines through those awaiters; loop is the lowest layer that has a shard.
#include "uringrpc/async.h"

#include "loop/offload_pool.h"
#include "loop/shard.h"
#include "loop/timer_wheel.h"
#include "uringrpc/errors.h"

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
