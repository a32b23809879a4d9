// Waking handlers from other threads. Any thread (a worker, a client library's callback
// thread, a publisher) hands work or values to a shard; a handler waiting for them resumes
// on its own shard:
//   uringrpc::ShardRef here = uringrpc::this_shard();   here.post(fn)   server.run_on(i, fn)
//   uringrpc::Event          set once by any thread, awaited by handlers of its shard
//   uringrpc::Promise<T>     set_value/set_exception by any thread; co_await its Future<T>
//   uringrpc::Channel<T>     bounded, many senders on any thread, one receiving handler
//   uringrpc::from_callback  co_await an asynchronous API that reports through a callback
// Every hand-off goes through the shard's inbox (Shard::post: a small mutex-guarded MPSC
// vector and an eventfd read on its ring), never a lock on the shard's own data. A Channel
// holds its values behind its own small mutex (senders on many threads, the receiver on
// the shard); nothing here is on the path of an RPC that does not use it.
// Lifetimes: each primitive is a handle on shared state (shared_ptr), so producers and the
// awaiting handler may go away in any order. If the awaiting call is cancelled (its frame
// destroyed) or the server has stopped, a later set/complete/send is safe: nothing is
// resumed and the value is dropped, destroyed on whichever thread releases it last.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace uringrpc {

namespace detail {
struct ShardLink;  // src/loop/shard.h
}

// A handle on one shard that any thread may keep and post to, even after the server has
// stopped (the post is then refused). Copyable; cheap.
class ShardRef {
 public:
  ShardRef() = default;  // refers to no shard: post() returns false
  explicit ShardRef(std::shared_ptr<detail::ShardLink> link) noexcept : link_(std::move(link)) {}

  // Any thread. Runs fn on the shard's thread in a coming loop turn. Returns false, and
  // destroys fn at once without running it, if the shard's loop has ended. A function queued
  // while the shard shuts down may still be destroyed without running.
  bool post(std::function<void()> fn) const;
  // True on the thread of this shard.
  bool is_current() const noexcept;
  unsigned index() const;
  explicit operator bool() const noexcept { return link_ != nullptr; }
  const std::shared_ptr<detail::ShardLink>& link() const noexcept { return link_; }

 private:
  std::shared_ptr<detail::ShardLink> link_;
};

// The shard running the calling handler. Throws UsageError on any other thread.
ShardRef this_shard();

// What waits when a promise is destroyed unfulfilled (or every Completion of a
// from_callback is dropped without being called).
class BrokenPromise : public std::logic_error {
 public:
  BrokenPromise() : std::logic_error("uringrpc: promise destroyed without a value") {}
};

namespace detail {

// One suspended coroutine, held in its awaiter (so in the coroutine frame). Touched only
// on the owning shard.
struct WaitNode {
  std::coroutine_handle<> handle;
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  enum class State : unsigned char { kIdle, kWaiting, kQueued } state = State::kIdle;
};

// The shard side of a cross-thread wake-up, shared by Event, Promise and Channel: the
// owning shard and its list of waiters. The list is touched only on that shard; other
// threads reach it by posting wake() there.
class WakeState : public std::enable_shared_from_this<WakeState> {
 public:
  explicit WakeState(ShardRef shard) noexcept : shard_(std::move(shard)) {}
  virtual ~WakeState() = default;
  WakeState(const WakeState&) = delete;
  WakeState& operator=(const WakeState&) = delete;

  // Any thread: runs on_wake() on the owning shard (at once when called there). Nothing
  // happens if the shard is gone.
  void request_wake();
  // Owning shard: throws UsageError elsewhere.
  void check_owner(const char* what) const;
  void add(WaitNode& node, std::coroutine_handle<> h) noexcept;
  // Forgets node: unlinks it, or drops its queued resumption (its frame is being destroyed).
  void remove(WaitNode& node) noexcept;
  // Queues every waiter's resumption on the shard.
  void wake_all() noexcept;
  bool has_waiters() const noexcept { return head_ != nullptr; }
  const ShardRef& shard() const noexcept { return shard_; }

 protected:
  virtual void on_wake() noexcept { wake_all(); }

 private:
  ShardRef shard_;
  WaitNode* head_ = nullptr;
};

// Resolves the shard a primitive made without a ShardRef is bound to.
ShardRef bind_here(const char* what);
[[noreturn]] void throw_usage(const char* what);

// Removes the node from its state when the awaiter (the frame) goes away first.
struct NodeGuard {
  WaitNode node;
  WakeState* state = nullptr;
  NodeGuard() = default;
  NodeGuard(const NodeGuard&) = delete;
  NodeGuard& operator=(const NodeGuard&) = delete;
  NodeGuard(NodeGuard&& o) noexcept : state(o.state) { o.state = nullptr; }  // before suspending only
  ~NodeGuard() {
    if (state && node.state != WaitNode::State::kIdle) state->remove(node);
  }
  void wait_on(WakeState& s, std::coroutine_handle<> h) noexcept {
    state = &s;
    s.add(node, h);
  }
  void resumed() noexcept { node.state = WaitNode::State::kIdle; }
  // Stops waiting (the await goes on without suspending after all).
  void cancel() noexcept {
    if (state && node.state != WaitNode::State::kIdle) state->remove(node);
    node.state = WaitNode::State::kIdle;
  }
};

template <class T>
using ValueOf = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// The state of a Promise/Future pair: stage goes empty → writing → ready exactly once.
template <class T>
class FutureState final : public WakeState {
 public:
  using WakeState::WakeState;
  enum : int { kEmpty, kWriting, kReady };
  using Result = std::variant<std::monostate, ValueOf<T>, std::exception_ptr>;

  // Any thread. False if already completed. Emplaces in place: assigning a whole variant
  // trips g++ 12's -Wmaybe-uninitialized at -O2 for some T (grpc::Status under TSan).
  template <size_t I, class... A>
  bool complete(std::in_place_index_t<I>, A&&... args) {
    int expected = kEmpty;
    if (!stage_.compare_exchange_strong(expected, kWriting, std::memory_order_acquire)) return false;
    result_.template emplace<I>(std::forward<A>(args)...);
    stage_.store(kReady, std::memory_order_release);
    request_wake();
    return true;
  }
  bool ready() const noexcept { return stage_.load(std::memory_order_acquire) == kReady; }
  // Owning shard, once ready.
  T take() {
    if (taken_) throw_usage("uringrpc::Future: the value was taken already");
    taken_ = true;
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    if constexpr (!std::is_void_v<T>) return std::move(std::get<1>(result_));
  }

 private:
  std::atomic<int> stage_{kEmpty};
  bool taken_ = false;
  Result result_;
};

template <class T>
class [[nodiscard("co_await it: nothing waits otherwise")]] FutureAwaiter {
 public:
  explicit FutureAwaiter(std::shared_ptr<FutureState<T>> s) noexcept : state_(std::move(s)) {}
  bool await_ready() const noexcept { return state_->ready(); }
  bool await_suspend(std::coroutine_handle<> h) {
    state_->check_owner("uringrpc::Future must be awaited on the shard its Promise is bound to");
    if (state_->ready()) return false;
    guard_.wait_on(*state_, h);
    return true;
  }
  T await_resume() {
    guard_.resumed();
    return state_->take();
  }

 private:
  std::shared_ptr<FutureState<T>> state_;
  NodeGuard guard_;
};

}  // namespace detail


// A flag any thread sets once; handlers of its shard wait for it. Copyable handle.
//   uringrpc::Event ready;                       // in a handler: bound to its shard
//   worker([ready] { ...; ready.set(); });       // any thread
//   co_await ready.wait();                       // resumes on the shard once set
class Event {
  struct State final : detail::WakeState {
    using WakeState::WakeState;
    std::atomic<bool> set{false};
  };

 public:
  // Bound to the shard of the calling handler (UsageError on any other thread), or to `shard`.
  Event() : Event(detail::bind_here("uringrpc::Event")) {}
  explicit Event(ShardRef shard) : state_(std::make_shared<State>(std::move(shard))) {}

  // Any thread; idempotent. Wakes every handler waiting now; later waits return at once.
  void set() const {
    if (!state_->set.exchange(true, std::memory_order_acq_rel)) state_->request_wake();
  }
  bool is_set() const noexcept { return state_->set.load(std::memory_order_acquire); }

  class [[nodiscard("co_await it: wait() alone does not wait")]] WaitAwaiter {
   public:
    bool await_ready() const noexcept { return state_->set.load(std::memory_order_acquire); }
    bool await_suspend(std::coroutine_handle<> h) {
      state_->check_owner("uringrpc::Event must be awaited on the shard it is bound to");
      if (state_->set.load(std::memory_order_acquire)) return false;
      guard_.wait_on(*state_, h);
      return true;
    }
    void await_resume() noexcept { guard_.resumed(); }

   private:
    friend class Event;
    explicit WaitAwaiter(std::shared_ptr<State> s) noexcept : state_(std::move(s)) {}
    std::shared_ptr<State> state_;
    detail::NodeGuard guard_;
  };
  // co_await ev.wait(): returns at once if set, else once set() is called. Only on the
  // event's shard (UsageError elsewhere); any number of handlers of that shard may wait.
  WaitAwaiter wait() const { return WaitAwaiter(state_); }

 private:
  std::shared_ptr<State> state_;
};

template <class T>
class Future;
template <class T, class Start, class OnCancel>
class CallbackAwaiter;

// The producing half of a one-shot value: any thread fulfils it once; the handler that
// holds its Future<T> co_awaits the value (or the exception) on the promise's shard.
// Move-only. Destroyed unfulfilled, it delivers BrokenPromise.
template <class T>
class Promise {
 public:
  // Bound to the shard of the calling handler (UsageError on any other thread), or to `shard`.
  Promise() : Promise(detail::bind_here("uringrpc::Promise")) {}
  explicit Promise(ShardRef shard) : state_(std::make_shared<detail::FutureState<T>>(std::move(shard))) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::move(other.state_);
      future_taken_ = other.future_taken_;
    }
    return *this;
  }
  ~Promise() { abandon(); }

  // Once per promise (UsageError the second time).
  Future<T> get_future() {
    if (!state_ || future_taken_) detail::throw_usage("uringrpc::Promise::get_future called twice");
    future_taken_ = true;
    return Future<T>(state_);
  }
  // Any thread. Return false (and drop the value) if the promise was fulfilled already.
  // Safe after the awaiting call was cancelled or the server stopped: the value is dropped.
  bool set_value(detail::ValueOf<T> value) requires(!std::is_void_v<T>) {
    return live().complete(std::in_place_index<1>, std::move(value));
  }
  bool set_value() requires std::is_void_v<T> {
    return live().complete(std::in_place_index<1>);
  }
  bool set_exception(std::exception_ptr error) {
    return live().complete(std::in_place_index<2>, std::move(error));
  }

 private:
  detail::FutureState<T>& live() {
    if (!state_) detail::throw_usage("uringrpc::Promise used after being moved from");
    return *state_;
  }
  void abandon() noexcept {
    if (state_ && !state_->ready()) {
      try {
        state_->complete(std::in_place_index<2>, std::make_exception_ptr(BrokenPromise()));
      } catch (...) {  // out of memory: the waiter stays suspended until its call ends
      }
    }
  }
  template <class, class, class>
  friend class CallbackAwaiter;

  std::shared_ptr<detail::FutureState<T>> state_;
  bool future_taken_ = false;
};

// The consuming half: `T v = co_await future;` on the promise's shard (UsageError
// elsewhere). Returns the value, or rethrows the exception; once (UsageError after).
// Move-only. Destroyed while awaited (the call was cancelled), nothing is resumed later.
template <class T>
class Future {
 public:
  Future() = default;
  Future(Future&&) noexcept = default;
  Future& operator=(Future&&) noexcept = default;
  bool valid() const noexcept { return state_ != nullptr; }
  // True once the promise was fulfilled (any thread may ask).
  bool ready() const noexcept { return state_ && state_->ready(); }
  detail::FutureAwaiter<T> operator co_await() const {
    if (!state_) detail::throw_usage("uringrpc::Future has no promise");
    return detail::FutureAwaiter<T>(state_);
  }

 private:
  friend class Promise<T>;
  explicit Future(std::shared_ptr<detail::FutureState<T>> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<detail::FutureState<T>> state_;
};

// The callback a from_callback() starter hands to an asynchronous API: call it once, from
// any thread, with the result (`done(v)`, or `done()` for void) or `done.fail(e)`. Copyable
// (std::function-friendly): copies share one promise; calls after the first are ignored,
// and if every copy is dropped without a call, the awaiting handler gets BrokenPromise.
template <class T>
class Completion {
 public:
  explicit Completion(Promise<T> promise) : promise_(std::make_shared<Promise<T>>(std::move(promise))) {}
  void operator()(detail::ValueOf<T> value) const requires(!std::is_void_v<T>) {
    promise_->set_value(std::move(value));
  }
  void operator()() const requires std::is_void_v<T> { promise_->set_value(); }
  void fail(std::exception_ptr error) const { promise_->set_exception(std::move(error)); }

 private:
  std::shared_ptr<Promise<T>> promise_;
};

template <class T, class Start, class OnCancel>
class [[nodiscard("co_await it: from_callback() starts nothing until it is awaited")]] CallbackAwaiter {
 public:
  CallbackAwaiter(Start start, OnCancel on_cancel) : start_(std::move(start)), on_cancel_(std::move(on_cancel)) {}
  CallbackAwaiter(CallbackAwaiter&&) = default;
  ~CallbackAwaiter() {
    // The frame is destroyed while the operation is still running (the call was cancelled).
    if (state_ && !resumed_ && !state_->ready()) {
      if constexpr (!std::is_same_v<OnCancel, std::nullptr_t>) {
        try {
          on_cancel_();
        } catch (...) {
        }
      }
    }
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    Promise<T> promise(detail::bind_here("uringrpc::from_callback"));
    state_ = promise.state_;
    guard_.wait_on(*state_, h);
    try {
      start_(Completion<T>(std::move(promise)));
    } catch (...) {
      guard_.cancel();
      state_.reset();
      throw;
    }
    if (!state_->ready()) return true;
    guard_.cancel();  // completed inside start(): go on without a loop turn
    return false;
  }
  T await_resume() {
    guard_.resumed();
    resumed_ = true;
    return state_->take();
  }

 private:
  Start start_;
  OnCancel on_cancel_;
  std::shared_ptr<detail::FutureState<T>> state_;
  detail::NodeGuard guard_;
  bool resumed_ = false;
};

// Adapts an API that reports through a callback, without blocking the shard or a thread:
//   auto get = uringrpc::from_callback<grpc::Status>(
//       [&](uringrpc::Completion<grpc::Status> done) {
//         stub->async()->Get(&call->ctx, &call->req, &call->resp,
//                            [call, done](grpc::Status st) { done(std::move(st)); });
//       },
//       [call] { call->ctx.TryCancel(); });   // optional: the handler's call was cancelled
//   grpc::Status s = co_await get;
// g++ 12 destroys twice a lambda that captures a local by copy (`[call]` above) when the
// lambda is written inside the co_await expression itself: bind the awaitable (or that
// lambda) to a local first, as here. Lambdas capturing by reference are not affected.
// `start` runs on the shard inside the co_await, given the Completion; whatever the
// operation writes into must outlive it (share it with the callback, as `call` above),
// since a cancelled handler's frame is gone when the callback runs. `on_cancel` runs on the
// shard when the frame is destroyed before the result came; the result is then dropped.
template <class T, class Start, class OnCancel = std::nullptr_t>
CallbackAwaiter<T, Start, OnCancel> from_callback(Start start, OnCancel on_cancel = nullptr) {
  return CallbackAwaiter<T, Start, OnCancel>(std::move(start), std::move(on_cancel));
}

namespace detail {

// A Channel's values: a ring of `capacity` slots allocated up front, behind a mutex that
// senders (any thread) and the receiver (the shard) hold for a push or a pop only.
template <class T>
class ChannelState final : public WakeState {
 public:
  ChannelState(ShardRef shard, size_t capacity) : WakeState(std::move(shard)), slots_(capacity) {}

  template <class U>
  bool push(U&& value, bool evict) {
    std::optional<T> evicted;  // destroyed after the lock is released
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return false;
      if (count_ == slots_.size()) {
        if (!evict) return false;
        evicted = std::move(slots_[head_]);
        slots_[head_].reset();
        head_ = (head_ + 1) % slots_.size();
        --count_;
        ++dropped_;
      }
      slots_[(head_ + count_) % slots_.size()].emplace(std::forward<U>(value));
      ++count_;
      wake = receiver_waiting_;
      receiver_waiting_ = false;
    }
    if (wake) request_wake();
    return true;
  }
  void close() {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      wake = receiver_waiting_;
      receiver_waiting_ = false;
    }
    if (wake) request_wake();
  }
  // Receiver: a value, or nothing (closed, or empty: then, with `wait`, the next push or
  // close wakes the receiver). Returns false only when empty and still open.
  bool pop(std::optional<T>& out, bool wait) {
    std::lock_guard<std::mutex> lock(mu_);
    if (count_ > 0) {
      out = std::move(slots_[head_]);
      slots_[head_].reset();
      head_ = (head_ + 1) % slots_.size();
      --count_;
      return true;
    }
    if (closed_) return true;
    if (wait) receiver_waiting_ = true;
    return false;
  }
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  uint64_t dropped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
  }
  size_t capacity() const noexcept { return slots_.size(); }

 protected:
  // A wake-up posted for a receiver that has gone since (a cancelled frame) must not
  // resume the next one before there is something for it.
  void on_wake() noexcept override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (count_ == 0 && !closed_) {
        if (has_waiters()) receiver_waiting_ = true;
        return;
      }
    }
    wake_all();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::optional<T>> slots_;
  size_t head_ = 0;
  size_t count_ = 0;
  uint64_t dropped_ = 0;
  bool closed_ = false;
  bool receiver_waiting_ = false;
};

}  // namespace detail

namespace detail {
// Keeps a channel open while a receiving handle exists: the last Channel<T> handle closes
// it, so producers holding only ChannelSenders see closed() once the receiver is gone.
template <class T>
class ChannelReceiverSide {
 public:
  explicit ChannelReceiverSide(std::shared_ptr<ChannelState<T>> state) noexcept : state(std::move(state)) {}
  ChannelReceiverSide(const ChannelReceiverSide&) = delete;
  ChannelReceiverSide& operator=(const ChannelReceiverSide&) = delete;
  ~ChannelReceiverSide() { state->close(); }
  const std::shared_ptr<ChannelState<T>> state;
};
}  // namespace detail

template <class T>
class Channel;

// The producers' half of a Channel: sends from any thread, and does not keep the channel
// open. Once every Channel<T> handle (the receiver's) is gone, the channel is closed and
// sends return false, so a publisher holding senders of handlers that ended sees it.
template <class T>
class ChannelSender {
 public:
  // Any thread. Queues value unless the channel is full or closed (then returns false and
  // leaves an rvalue argument untouched).
  bool try_send(const T& value) const { return state_->push(value, false); }
  bool try_send(T&& value) const { return state_->push(std::move(value), false); }
  // Any thread. Queues value, dropping the oldest queued value when full (counted by
  // dropped()). Returns false only when closed.
  bool send_dropping_oldest(T value) const { return state_->push(std::move(value), true); }
  // Any thread; idempotent. The receiver gets what is queued, then nullopt; sends fail.
  void close() const { state_->close(); }
  bool closed() const { return state_->closed(); }
  size_t size() const { return state_->size(); }
  size_t capacity() const noexcept { return state_->capacity(); }
  uint64_t dropped() const { return state_->dropped(); }

 private:
  friend class Channel<T>;
  explicit ChannelSender(std::shared_ptr<detail::ChannelState<T>> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<detail::ChannelState<T>> state_;
};

// A bounded queue from any threads to one handler: senders never block (try_send answers
// false when the channel is full or closed), the handler `co_await`s receive() on the
// channel's shard. Copyable handle; the channel closes itself when the last copy is gone.
// Give producers a sender(), which does not keep it open:
//   uringrpc::Channel<Event> ch(64);                 // in a handler: bound to its shard
//   registry.add(ch.sender());                       // producers: sender.try_send(e)
//   while (auto e = co_await ch.receive()) co_await ctx.write(encode(*e));
//   // the handler ends (or is cancelled): ch closes, the producers' try_send returns false
// The slow-receiver policy is the producer's: on a full channel, try_send() returns false
// (drop the new value, or close() the channel to disconnect the receiver), or
// send_dropping_oldest() makes room by dropping the oldest queued value.
template <class T>
class Channel {
 public:
  // Bound to the shard of the calling handler (UsageError elsewhere), or to `shard`.
  // Throws std::invalid_argument for a capacity of 0.
  explicit Channel(size_t capacity) : Channel(capacity, detail::bind_here("uringrpc::Channel")) {}
  Channel(size_t capacity, ShardRef shard)
      : side_(std::make_shared<detail::ChannelReceiverSide<T>>(
            capacity == 0 ? throw std::invalid_argument("uringrpc::Channel capacity must be at least 1")
                          : std::make_shared<detail::ChannelState<T>>(std::move(shard), capacity))) {}

  // A send-only handle for producers (any thread); it does not keep the channel open.
  ChannelSender<T> sender() const { return ChannelSender<T>(side_->state); }

  // The same operations as ChannelSender, for code that holds the channel itself.
  bool try_send(const T& value) const { return side_->state->push(value, false); }
  bool try_send(T&& value) const { return side_->state->push(std::move(value), false); }
  bool send_dropping_oldest(T value) const { return side_->state->push(std::move(value), true); }
  // Any thread; idempotent. receive() returns what is queued, then nullopt; sends fail.
  void close() const { side_->state->close(); }
  bool closed() const { return side_->state->closed(); }
  size_t size() const { return side_->state->size(); }
  size_t capacity() const noexcept { return side_->state->capacity(); }
  uint64_t dropped() const { return side_->state->dropped(); }

  class [[nodiscard("co_await it: receive() alone does not wait")]] ReceiveAwaiter {
   public:
    bool await_ready() { return state().pop(value_, false); }
    bool await_suspend(std::coroutine_handle<> h) {
      state().check_owner("uringrpc::Channel must be received from on the shard it is bound to");
      if (state().has_waiters()) detail::throw_usage("uringrpc::Channel: one receive() at a time");
      if (state().pop(value_, true)) return false;
      guard_.wait_on(state(), h);
      suspended_ = true;
      return true;
    }
    std::optional<T> await_resume() {
      guard_.resumed();
      if (suspended_) state().pop(value_, false);
      return std::move(value_);
    }

   private:
    friend class Channel;
    explicit ReceiveAwaiter(std::shared_ptr<detail::ChannelReceiverSide<T>> s) noexcept : side_(std::move(s)) {}
    detail::ChannelState<T>& state() const noexcept { return *side_->state; }
    // The receiving side, not just the values: a pending receive keeps the channel open.
    std::shared_ptr<detail::ChannelReceiverSide<T>> side_;
    std::optional<T> value_;
    detail::NodeGuard guard_;
    bool suspended_ = false;
  };
  // co_await ch.receive(): the oldest queued value, or nullopt once closed and drained.
  // On the channel's shard only, one receive at a time.
  ReceiveAwaiter receive() const { return ReceiveAwaiter(side_); }

 private:
  std::shared_ptr<detail::ChannelReceiverSide<T>> side_;
};

}  // namespace uringrpc
