// Turning handler functions into MethodHandlers the server can route to:
//   server.add_method("/pkg.Svc/Get", uringrpc::unary(get));
// The four adapters read the request(s), run the handler and write the response(s); the
// request and response types are deduced from the handler's signature.
#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "uringrpc/server_context.h"
#include "uringrpc/stream.h"
#include "uringrpc/task.h"

namespace uringrpc {

// The four shapes of an RPC, as gRPC names them: how many messages each way.
enum class RpcType { kUnary, kClientStreaming, kServerStreaming, kBidiStreaming };

struct MethodHandler {
  // Makes the coroutine that serves one call; it is started by the call and owns nothing
  // but its frame.
  std::function<Task<void>(ServerContext&)> run;
  // Set by unary(), server_streaming(), client_streaming() and bidi_streaming(); what the
  // metrics label grpc_type says. A handler built by hand is counted as bidi streaming.
  RpcType type = RpcType::kBidiStreaming;
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

template <class T>
struct IsTask : std::false_type {};
template <class T>
struct IsTask<Task<T>> : std::true_type {};

// What a finished unary or client-streaming handler answers: its response, or null when
// the RPC ends without one. A handler that set a non-OK code has its response discarded,
// as in gRPC; one that ended with a Status ends the RPC with it (an OK Status carries no
// response, which the client sees as INTERNAL). Rethrows what the handler threw.
void end_with_returned_status(ServerContext& ctx, Status&& status);
template <class T>
T* response_of(Task<T>& task, ServerContext& ctx) {
  auto& p = FrameAccess::handle(task).promise();
  if (p.exception_) std::rethrow_exception(p.exception_);
  if (Status* s = std::get_if<2>(&p.value_)) {
    end_with_returned_status(ctx, std::move(*s));
    return nullptr;
  }
  if (ctx.code() != StatusCode::OK) return nullptr;
  return &std::get<1>(p.value_);
}

// The request is read straight into this frame (no coroutine of its own to read it into,
// no move out of one): one frame and one message move fewer per call.
template <class Req, class F>
Task<void> run_unary(const F& f, ServerContext& ctx) {
  std::optional<Req> req = co_await ctx.read<Req>();
  if (!req) throw_missing_request();
  using Result = decltype(f(std::move(*req), ctx));
  static_assert(IsTask<Result>::value, "a unary handler returns Task<Resp>");
  // A local, not a temporary: the response is written from the handler's promise in place.
  Result task = f(std::move(*req), ctx);
  co_await run_to_end(task);
  if (auto* resp = response_of(task, ctx)) co_await ctx.write(std::move(*resp));
}

template <class Req, class F>
Task<void> run_server_streaming(const F& f, ServerContext& ctx) {
  std::optional<Req> req = co_await ctx.read<Req>();
  if (!req) throw_missing_request();
  co_await f(std::move(*req), ctx);
}

template <class Req, class F>
Task<void> run_client_streaming(const F& f, ServerContext& ctx) {
  Reader<Req> reader(ctx);
  using Result = decltype(f(reader, ctx));
  static_assert(IsTask<Result>::value, "a client-streaming handler returns Task<Resp>");
  Result task = f(reader, ctx);
  co_await run_to_end(task);
  if (auto* resp = response_of(task, ctx)) co_await ctx.write(std::move(*resp));
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

// Task<Resp> f(Req, ServerContext&): co_return the response, or a Status to end the RPC
// without one.
template <class F>
MethodHandler unary(F f) {
  using Traits = detail::HandlerTraits<F>;
  using Req = typename Traits::Arg;
  return {[f = std::move(f)](ServerContext& ctx) {
            return detail::run_unary<Req>(f, ctx);
          },
          RpcType::kUnary};
}

// Stream<Resp> f(Req, ServerContext&) with co_yield, or Task<void> f(Req, ServerContext&)
// with co_await ctx.write(resp).
template <class F>
MethodHandler server_streaming(F f) {
  using Req = typename detail::HandlerTraits<F>::Arg;
  return {[f = std::move(f)](ServerContext& ctx) {
            return detail::run_server_streaming<Req>(f, ctx);
          },
          RpcType::kServerStreaming};
}

// Task<Resp> f(Reader<Req>&, ServerContext&): co_return the response or a Status, as unary.
template <class F>
MethodHandler client_streaming(F f) {
  using Req = typename detail::ReaderValue<typename detail::HandlerTraits<F>::Arg>::type;
  return {[f = std::move(f)](ServerContext& ctx) {
            return detail::run_client_streaming<Req>(f, ctx);
          },
          RpcType::kClientStreaming};
}

// Stream<Resp> or Task<void> f(Reader<Req>&, ServerContext&)
template <class F>
MethodHandler bidi_streaming(F f) {
  using Req = typename detail::ReaderValue<typename detail::HandlerTraits<F>::Arg>::type;
  return {[f = std::move(f)](ServerContext& ctx) {
            return detail::run_bidi_streaming<Req>(f, ctx);
          },
          RpcType::kBidiStreaming};
}

}  // namespace uringrpc
