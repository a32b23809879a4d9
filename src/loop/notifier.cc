// The Notifier of uringrpc/notify.h: a cross-thread wake-up for one handler, delivered
// through its shard's inbox (Shard::post). Used by handlers that wait for events produced
// elsewhere (the health service's Watch); loop is the lowest layer that has a shard.
#include "uringrpc/notify.h"

#include "loop/shard.h"
#include "uringrpc/errors.h"

namespace uringrpc {
namespace detail {

// `pending` is the only field another thread touches. A notification is consumed either by
// a wait() that finds it (await_ready) or by the posted fire() that wakes a waiting
// handler: consumed at delivery, so a notify() that lands while the woken handler is still
// queued is a new notification (and a new post), never lost.
struct NotifierState {
  explicit NotifierState(loop::Shard& s) noexcept : shard(s) {}

  // On the shard: wakes the waiter if a notification is pending.
  void fire() {
    if (!alive || !waiter) return;
    if (!pending.exchange(false, std::memory_order_acq_rel)) return;
    queued = waiter;
    waiter = nullptr;
    shard.schedule(queued);
  }

  loop::Shard& shard;
  std::atomic<bool> pending{false};
  std::coroutine_handle<> waiter;  // suspended in wait()
  std::coroutine_handle<> queued;  // woken, not yet resumed: unscheduled if its frame dies
  bool alive = true;
};

}  // namespace detail

Notifier::Notifier() {
  loop::Shard* shard = loop::Shard::current();
  if (!shard) throw UsageError("uringrpc::Notifier must be made in a handler, on a shard");
  state_ = std::make_shared<detail::NotifierState>(*shard);
}

Notifier::~Notifier() {
  state_->alive = false;
  // The frame that waits is being destroyed (a cancelled call): its queued resumption
  // must not run.
  if (state_->queued) state_->shard.unschedule(state_->queued);
}

void Notifier::notify() {
  // Only the first notification since the last delivery posts: the rest ride with it.
  if (state_->pending.exchange(true, std::memory_order_acq_rel)) return;
  state_->shard.post([s = state_] { s->fire(); });
}

bool Notifier::WaitAwaiter::await_ready() noexcept {
  return state_.pending.exchange(false, std::memory_order_acq_rel);
}

void Notifier::WaitAwaiter::await_suspend(std::coroutine_handle<> h) noexcept { state_.waiter = h; }

void Notifier::WaitAwaiter::await_resume() noexcept { state_.queued = nullptr; }

}  // namespace uringrpc
