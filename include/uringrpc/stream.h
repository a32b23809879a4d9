// Stream<T>: return type of a handler that produces responses with co_yield. Each
// co_yield is a ctx.write() of that message (the same backpressure, the same order), so a
// handler may mix co_yield with co_await ctx.write()/ctx.read() freely.
// The handler must take a ServerContext& parameter: the promise finds it there.
#pragma once

#include <type_traits>

#include "uringrpc/server_context.h"
#include "uringrpc/task.h"

namespace uringrpc {

template <class T>
class Stream;

namespace detail {

template <class T>
struct StreamPromise : TaskPromise<void> {
  template <class... Args>
  explicit StreamPromise(Args&... args) noexcept : ctx_(find_context(args...)) {}

  Stream<T> get_return_object() noexcept;
  ServerContext::WriteAwaiter yield_value(T value) { return ctx_->write(std::move(value)); }

 private:
  template <class A, class... Rest>
  static ServerContext* find_context(A& a, Rest&... rest) noexcept {
    if constexpr (std::is_same_v<std::remove_cv_t<A>, ServerContext>) {
      return &a;
    } else {
      static_assert(sizeof...(Rest) > 0, "a Stream<T> handler needs a ServerContext& parameter");
      return find_context(rest...);
    }
  }
  ServerContext* ctx_;
};

}  // namespace detail

template <class T>
class [[nodiscard("a Stream does nothing until it is co_awaited")]] Stream : public detail::AwaitableFrame<detail::StreamPromise<T>, void> {
 public:
  using promise_type = detail::StreamPromise<T>;
  using value_type = T;
  using detail::AwaitableFrame<promise_type, void>::AwaitableFrame;
};

namespace detail {
template <class T>
Stream<T> StreamPromise<T>::get_return_object() noexcept {
  return Stream<T>(std::coroutine_handle<StreamPromise<T>>::from_promise(*this));
}
}  // namespace detail

}  // namespace uringrpc
