// Notifier: lets any thread wake a handler that waits on its shard. The handler makes one
// (it is bound to the handler's shard), hands its address to whoever produces the events,
// and loops on `co_await n.wait()`; a producer on any thread calls n.notify().
//   In the handler:  uringrpc::Notifier n;  register &n (under the producer's lock)
//                    for (;;) { co_await n.wait(); ...look at what changed... }
//                    unregister &n (under the same lock) before n goes away
//   Any thread:      lock; for each registered n: n->notify(); unlock
// notify() reaches the shard through its inbox (Shard::post: an eventfd read on its ring);
// notifications that arrive before the handler looks are coalesced into one wake-up, and a
// handler never wakes without one. Nothing is locked or written while nobody notifies.
#pragma once

#include <coroutine>
#include <memory>

namespace uringrpc {

namespace detail {
struct NotifierState;
}

class Notifier {
 public:
  // Bound to the shard running the calling handler. Throws UsageError on any other thread.
  Notifier();
  // On its shard (a handler's local dies there). A wake-up not yet delivered is dropped.
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Any thread. Wakes the handler waiting in wait(), or makes its next wait() return at
  // once. Must not race with the destructor: call it under the lock the handler takes to
  // unregister the notifier, as above. May throw std::bad_alloc.
  void notify();

  // co_await n.wait(): returns once notify() was called since the previous wait() returned
  // (at once if that happened already). Only the handler that owns the notifier waits.
  class [[nodiscard("co_await it: wait() alone does not wait")]] WaitAwaiter {
   public:
    bool await_ready() noexcept;
    void await_suspend(std::coroutine_handle<> h) noexcept;
    void await_resume() noexcept;

   private:
    friend class Notifier;
    explicit WaitAwaiter(detail::NotifierState& state) noexcept : state_(state) {}
    detail::NotifierState& state_;
  };
  WaitAwaiter wait() noexcept { return WaitAwaiter(*state_); }

 private:
  // Shared with the functions notify() posts, which may run after the notifier is gone.
  std::shared_ptr<detail::NotifierState> state_;
};

}  // namespace uringrpc
