// Task<T>: the lazy coroutine type of handlers. It starts when awaited, hands control
// back to its awaiter by symmetric transfer when it ends, and owns its frame (destroying
// a Task destroys a suspended coroutine: that is how a cancelled RPC's handler is ended).
// A Task<T> ends with a T or with a Status: `co_return Status{code, "why"}` fails the RPC.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "uringrpc/frame_pool.h"
#include "uringrpc/status.h"

namespace uringrpc {

template <class T>
class Task;

namespace detail {

// A Task that ended with a Status was awaited for its value: ends the RPC with that status
// (throws AbortError, as ServerContext::abort does; an OK status becomes INTERNAL).
[[noreturn]] void throw_returned_status(Status status);

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
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>,
                "Task<Status> is ambiguous: a Task<T> already ends with a T or a Status");
  std::variant<std::monostate, T, Status> value_;
  Task<T> get_return_object() noexcept;
  // co_return value; (anything T can be made from, as before).
  template <class U>
    requires(!std::is_same_v<std::remove_cvref_t<U>, Status> && std::is_constructible_v<T, U &&>)
  void return_value(U&& v) {
    value_.template emplace<1>(std::forward<U>(v));
  }
  // Makes `co_return {};` ambiguous (a T or a Status?) instead of silently an OK Status.
  void return_value(T&& v) { value_.template emplace<1>(std::move(v)); }
  // co_return Status{StatusCode::NOT_FOUND, "no such user"};
  void return_value(Status s) { value_.template emplace<2>(std::move(s)); }
  T take() {
    if (exception_) std::rethrow_exception(exception_);
    if (value_.index() == 2) throw_returned_status(std::move(std::get<2>(value_)));
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

// The handler adapters' way to a task's frame; users only ever co_await a task.
struct FrameAccess {
  template <class F>
  static auto handle(const F& frame) noexcept {
    return frame.h_;
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
    struct [[nodiscard]] Awaiter {
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

  bool valid() const noexcept { return static_cast<bool>(h_); }

 protected:
  friend struct FrameAccess;
  std::coroutine_handle<Promise> h_;
};

}  // namespace detail

template <class T = void>
class [[nodiscard("a Task does nothing until it is co_awaited")]] Task : public detail::AwaitableFrame<detail::TaskPromise<T>, T> {
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

// co_await run_to_end(task): runs the task to its end without taking its result; the
// handler adapters then read the promise (a response, a Status or an exception).
template <class T>
auto run_to_end(Task<T>& task) noexcept {
  struct [[nodiscard]] Awaiter {
    std::coroutine_handle<TaskPromise<T>> h;
    bool await_ready() noexcept { return !h || h.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      h.promise().continuation_ = awaiting;
      return h;
    }
    void await_resume() noexcept {}
  };
  return Awaiter{FrameAccess::handle(task)};
}
}  // namespace detail

}  // namespace uringrpc
