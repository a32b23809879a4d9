// Turning handler functions into MethodHandlers the server can route to:
//   server.add_method("/pkg.Svc/Get", uringrpc::unary(get));
// The four adapters read the request(s), run the handler and write the response(s); the
// request and response types are deduced from the handler's signature.
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include "uringrpc/server_context.h"
#include "uringrpc/stream.h"
#include "uringrpc/task.h"

namespace uringrpc {

enum class RpcKind { kUnary, kServerStreaming, kClientStreaming, kBidiStreaming };

struct MethodHandler {
  RpcKind kind;
  // Makes the coroutine that serves one call; it is started by the call and owns nothing
  // but its frame.
  std::function<Task<void>(ServerContext&)> run;
};

namespace detail {

template <class F>
struct HandlerTraits : HandlerTraits<decltype(&F::operator())> {};
template <class R, class A, class C>
struct HandlerTraits<R (*)(A, C)> {
  using Result = R;
  using Arg = std::remove_cvref_t<A>;
};
template <class R, class A, class C>
struct HandlerTraits<R(A, C)> : HandlerTraits<R (*)(A, C)> {};
template <class R, class K, class A, class C>
struct HandlerTraits<R (K::*)(A, C) const> : HandlerTraits<R (*)(A, C)> {};
template <class R, class K, class A, class C>
struct HandlerTraits<R (K::*)(A, C)> : HandlerTraits<R (*)(A, C)> {};

template <class T>
struct ReaderValue;
template <class T>
struct ReaderValue<Reader<T>> {
  using type = T;
};

template <class T>
struct IsStream : std::false_type {};
template <class T>
struct IsStream<Stream<T>> : std::true_type {};

[[noreturn]] void throw_missing_request();

template <class Req>
Task<Req> read_single_request(ServerContext& ctx) {
  auto req = co_await ctx.read<Req>();
  if (!req) throw_missing_request();
  co_return std::move(*req);
}

template <class Req, class F>
Task<void> run_unary(const F& f, ServerContext& ctx) {
  Req req = co_await read_single_request<Req>(ctx);
  auto resp = co_await f(std::move(req), ctx);
  // A handler that set a non-OK code has its return value discarded, as in gRPC.
  if (ctx.code() == StatusCode::OK) co_await ctx.write(std::move(resp));
}

template <class Req, class F>
Task<void> run_server_streaming(const F& f, ServerContext& ctx) {
  Req req = co_await read_single_request<Req>(ctx);
  co_await f(std::move(req), ctx);
}

template <class Req, class F>
Task<void> run_client_streaming(const F& f, ServerContext& ctx) {
  Reader<Req> reader(ctx);
  auto resp = co_await f(reader, ctx);
  if (ctx.code() == StatusCode::OK) co_await ctx.write(std::move(resp));
}

template <class Req, class F>
Task<void> run_bidi_streaming(const F& f, ServerContext& ctx) {
  Reader<Req> reader(ctx);
  co_await f(reader, ctx);
}

}  // namespace detail

// A handler is a function or a lambda with the exact signatures below (member functions
// and generic lambdas are not deduced: wrap them in a lambda capturing the object).
// A capturing lambda is safe here: the server keeps the lambda object alive for its whole
// life, so a coroutine frame's reference to its captures never dangles.

// Task<Resp> f(Req, ServerContext&)
template <class F>
MethodHandler unary(F f) {
  using Traits = detail::HandlerTraits<F>;
  using Req = typename Traits::Arg;
  return {RpcKind::kUnary, [f = std::move(f)](ServerContext& ctx) {
            return detail::run_unary<Req>(f, ctx);
          }};
}

// Stream<Resp> f(Req, ServerContext&) with co_yield, or Task<void> f(Req, ServerContext&)
// with co_await ctx.write(resp).
template <class F>
MethodHandler server_streaming(F f) {
  using Req = typename detail::HandlerTraits<F>::Arg;
  return {RpcKind::kServerStreaming, [f = std::move(f)](ServerContext& ctx) {
            return detail::run_server_streaming<Req>(f, ctx);
          }};
}

// Task<Resp> f(Reader<Req>&, ServerContext&)
template <class F>
MethodHandler client_streaming(F f) {
  using Req = typename detail::ReaderValue<typename detail::HandlerTraits<F>::Arg>::type;
  return {RpcKind::kClientStreaming, [f = std::move(f)](ServerContext& ctx) {
            return detail::run_client_streaming<Req>(f, ctx);
          }};
}

// Stream<Resp> or Task<void> f(Reader<Req>&, ServerContext&)
template <class F>
MethodHandler bidi_streaming(F f) {
  using Req = typename detail::ReaderValue<typename detail::HandlerTraits<F>::Arg>::type;
  return {RpcKind::kBidiStreaming, [f = std::move(f)](ServerContext& ctx) {
            return detail::run_bidi_streaming<Req>(f, ctx);
          }};
}

}  // namespace uringrpc
