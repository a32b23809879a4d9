// Awaitables for handlers that must wait without blocking their shard:
//   co_await uringrpc::sleep_for(100ms);                 // the shard's timer wheel
//   int n = co_await uringrpc::offload([] { return slow(); });  // a small thread pool
// Both resume on the shard that awaited them. If the RPC is cancelled meanwhile, the
// handler's frame is destroyed: the sleep is cancelled, an offloaded function still runs
// to completion on the pool and its result is dropped.
#pragma once

#include <chrono>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace uringrpc {

namespace detail {

class SleepOp;
struct SleepOpDeleter {
  void operator()(SleepOp* op) const noexcept;
};

// Shared between the awaiting frame (on the shard) and a pool thread.
class OffloadOp {
 public:
  virtual ~OffloadOp() = default;
  virtual void run_on_pool() noexcept = 0;
  std::coroutine_handle<> waiter_;  // cleared when the awaiting frame is destroyed
  void* shard_ = nullptr;
};
// Queues op on the pool; the pool posts completion back to op->shard_, which resumes waiter_.
void submit_offload(std::shared_ptr<OffloadOp> op);
void* current_shard_for_offload();

template <class R>
class TypedOffloadOp final : public OffloadOp {
 public:
  explicit TypedOffloadOp(std::function<R()> fn) : fn_(std::move(fn)) {}
  void run_on_pool() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        fn_();
        done_ = true;
      } else {
        result_.emplace(fn_());
      }
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  R take() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 private:
  std::function<R()> fn_;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result_{};
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace detail

class [[nodiscard("co_await it: sleep_for() alone does not wait")]] SleepAwaiter {
 public:
  explicit SleepAwaiter(std::chrono::nanoseconds d) noexcept : duration_(d) {}
  bool await_ready() const noexcept { return duration_.count() <= 0; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() const noexcept {}

 private:
  std::chrono::nanoseconds duration_;
  std::unique_ptr<detail::SleepOp, detail::SleepOpDeleter> op_;
};

template <class Rep, class Period>
SleepAwaiter sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
  return SleepAwaiter(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

template <class F>
auto offload(F fn) {
  using R = std::invoke_result_t<F&>;
  struct [[nodiscard("co_await it: offload() runs nothing until it is awaited")]] Awaiter {
    std::shared_ptr<detail::TypedOffloadOp<R>> op;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      op->waiter_ = h;
      op->shard_ = detail::current_shard_for_offload();
      detail::submit_offload(op);
    }
    R await_resume() {
      op->waiter_ = nullptr;
      return op->take();
    }
    ~Awaiter() {
      if (op) op->waiter_ = nullptr;  // frame destroyed while the pool still runs fn
    }
  };
  return Awaiter{std::make_shared<detail::TypedOffloadOp<R>>(std::function<R()>(std::move(fn)))};
}

}  // namespace uringrpc
