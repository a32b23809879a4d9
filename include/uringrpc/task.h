// Task<T>: the lazy coroutine type of handlers. It starts when awaited, hands control
// back to its awaiter by symmetric transfer when it ends, and owns its frame (destroying
// a Task destroys a suspended coroutine: that is how a cancelled RPC's handler is ended).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>
#include <variant>

namespace uringrpc {

template <class T>
class Task;

namespace detail {

// Coroutine frames of handlers come and go with every RPC: they are taken from the
// library's per-thread block pool instead of malloc.
void* frame_allocate(std::size_t n);
void frame_deallocate(void* p, std::size_t n) noexcept;

struct TaskPromiseBase {
  static void* operator new(std::size_t n) { return frame_allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_deallocate(p, n); }

  std::coroutine_handle<> continuation_;
  std::exception_ptr exception_;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto next = h.promise().continuation_;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
};

template <class T>
struct TaskPromise : TaskPromiseBase {
  std::variant<std::monostate, T> value_;
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) {
    value_.template emplace<1>(std::forward<U>(v));
  }
  T take() {
    if (exception_) std::rethrow_exception(exception_);
    return std::move(std::get<1>(value_));
  }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception_) std::rethrow_exception(exception_);
  }
};

// Shared by Task<T> and Stream<T>: a move-only owner of a coroutine frame that can be
// awaited once.
template <class Promise, class Result>
class AwaitableFrame {
 public:
  AwaitableFrame() noexcept = default;
  explicit AwaitableFrame(std::coroutine_handle<Promise> h) noexcept : h_(h) {}
  AwaitableFrame(AwaitableFrame&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  AwaitableFrame& operator=(AwaitableFrame&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  AwaitableFrame(const AwaitableFrame&) = delete;
  AwaitableFrame& operator=(const AwaitableFrame&) = delete;
  ~AwaitableFrame() {
    if (h_) h_.destroy();
  }

  auto operator co_await() && noexcept {
    struct Awaiter {
      std::coroutine_handle<Promise> h;
      bool await_ready() noexcept { return !h || h.done(); }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        h.promise().continuation_ = awaiting;
        return h;
      }
      Result await_resume() { return h.promise().take(); }
    };
    return Awaiter{h_};
  }

  std::coroutine_handle<Promise> handle() const noexcept { return h_; }
  bool valid() const noexcept { return static_cast<bool>(h_); }

 protected:
  std::coroutine_handle<Promise> h_;
};

}  // namespace detail

template <class T = void>
class [[nodiscard]] Task : public detail::AwaitableFrame<detail::TaskPromise<T>, T> {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;
  using detail::AwaitableFrame<promise_type, T>::AwaitableFrame;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace uringrpc
