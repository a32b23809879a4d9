// The seed's handlers, one per method of server_test.py's routing table, written as a
// uringrpc service author would: co_yield / ctx.write for responses, Reader::next /
// ctx.read for requests, exceptions for errors. Python's `assert` becomes check(), which
// throws std::runtime_error and so ends the RPC with UNKNOWN, as the seed's would.
#include "seed_service.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "uringrpc/async.h"
#include "uringrpc/handler.h"
#include "uringrpc/server_context.h"
#include "uringrpc/stream.h"
#include "uringrpc/task.h"

namespace uringrpc::seed {

namespace {

void check(bool condition, const char* what) {
  if (!condition) throw std::runtime_error(std::string("seed handler assertion failed: ") + what);
}

Bytes response() { return Bytes::borrow(kResponse); }

// --- unary-unary

Task<Bytes> unary_unary(Bytes /*request*/, ServerContext& /*ctx*/) { co_return response(); }

Task<Bytes> block_forever(Bytes /*request*/, ServerContext& /*ctx*/) {
  // Python awaits a future nobody completes. A year is "forever" for a test; the frame is
  // destroyed (and the sleep cancelled) when the server cancels the call.
  co_await sleep_for(std::chrono::hours(24 * 365));
  co_return response();
}

Task<Bytes> block_briefly(Bytes /*request*/, ServerContext& /*ctx*/) {
  co_await sleep_for(kShortTimeout / 2);
  co_return response();
}

Task<Bytes> error_without_raise_in_unary_unary(Bytes request, ServerContext& ctx) {
  check(request == kRequest, "request == _REQUEST");
  ctx.set_code(StatusCode::INTERNAL);
  co_return Bytes{};  // discarded: a non-OK code was set
}

// Python passes values of the wrong type (42, {}, ...) and expects TypeError. In C++ those
// cannot be expressed, so the twin passes metadata that is wrong for gRPC and expects the
// std::invalid_argument ServerContext documents.
Task<Bytes> invalid_trailing_metadata(Bytes request, ServerContext& ctx) {
  check(request == kRequest, "request == _REQUEST");
  const std::pair<const char*, Metadata> invalid[] = {
      {"uppercase key \"Error\"", {{"Error", "error"}}},
      {"key with a space", {{"bad key", "error"}}},
      {"reserved key grpc-status", {{"grpc-status", "0"}}},
      {"non-printable value on a non -bin key", {{"error", "\x01"}}},
  };
  for (const auto& [what, md] : invalid) {
    bool raised = false;
    try {
      ctx.set_trailing_metadata(md);
    } catch (const std::invalid_argument&) {
      raised = true;
    }
    if (!raised) throw std::runtime_error(std::string("No error raised for invalid metadata: ") + what);
  }
  // Invalid again ("Error" is not lowercase): abort throws std::invalid_argument naming the
  // trailing metadata, and the RPC ends UNKNOWN with that text in its details.
  ctx.abort(StatusCode::DATA_LOSS, "invalid abort", {{"Error", "error1"}, {"Error", "error2"}});
  co_return Bytes{};
}

// --- unary-stream

Stream<Bytes> unary_stream_async_gen(Bytes /*request*/, ServerContext& /*ctx*/) {
  for (int i = 0; i < kNumStreamResponses; ++i) co_yield response();
}

Task<void> unary_stream_reader_writer(Bytes /*request*/, ServerContext& ctx) {
  for (int i = 0; i < kNumStreamResponses; ++i) {
    if (!co_await ctx.write(response())) co_return;
  }
}

Stream<Bytes> unary_stream_evilly_mixed(Bytes /*request*/, ServerContext& ctx) {
  co_yield response();
  for (int i = 0; i < kNumStreamResponses - 1; ++i) {
    if (!co_await ctx.write(response())) co_return;
  }
}

// --- stream-unary

Task<Bytes> stream_unary_async_gen(Reader<Bytes>& requests, ServerContext& /*ctx*/) {
  int count = 0;
  while (auto request = co_await requests.next()) {
    check(*request == kRequest, "request == _REQUEST");
    ++count;
  }
  check(count == kNumStreamRequests, "request_count == _NUM_STREAM_REQUESTS");
  co_return response();
}

Task<Bytes> stream_unary_reader_writer(Reader<Bytes>& /*requests*/, ServerContext& ctx) {
  for (int i = 0; i < kNumStreamRequests; ++i) {
    auto request = co_await ctx.read();
    check(request && *request == kRequest, "await context.read() == _REQUEST");
  }
  co_return response();
}

Task<Bytes> stream_unary_evilly_mixed(Reader<Bytes>& requests, ServerContext& ctx) {
  auto first = co_await ctx.read();
  check(first && *first == kRequest, "await context.read() == _REQUEST");
  int count = 0;
  while (auto request = co_await requests.next()) {
    check(*request == kRequest, "request == _REQUEST");
    ++count;
  }
  check(count == kNumStreamRequests - 1, "request_count == _NUM_STREAM_REQUESTS - 1");
  co_return response();
}

Task<Bytes> error_in_stream_unary(Reader<Bytes>& requests, ServerContext& /*ctx*/) {
  int count = 0;
  while (auto request = co_await requests.next()) {
    check(*request == kRequest, "request == _REQUEST");
    ++count;
    if (count >= 1) throw std::invalid_argument("A testing RuntimeError!");  // Python: ValueError
  }
  // Python returns None here, which gRPC cannot serialize: the RPC fails either way.
  throw std::runtime_error("request stream ended without a request");
}

// --- stream-stream

Stream<Bytes> stream_stream_async_gen(Reader<Bytes>& requests, ServerContext& /*ctx*/) {
  int count = 0;
  while (auto request = co_await requests.next()) {
    check(*request == kRequest, "request == _REQUEST");
    ++count;
  }
  check(count == kNumStreamRequests, "request_count == _NUM_STREAM_REQUESTS");
  for (int i = 0; i < kNumStreamResponses; ++i) co_yield response();
}

Task<void> stream_stream_reader_writer(Reader<Bytes>& /*requests*/, ServerContext& ctx) {
  for (int i = 0; i < kNumStreamRequests; ++i) {
    auto request = co_await ctx.read();
    check(request && *request == kRequest, "await context.read() == _REQUEST");
  }
  for (int i = 0; i < kNumStreamResponses; ++i) {
    if (!co_await ctx.write(response())) co_return;
  }
}

Stream<Bytes> stream_stream_evilly_mixed(Reader<Bytes>& requests, ServerContext& ctx) {
  auto first = co_await ctx.read();
  check(first && *first == kRequest, "await context.read() == _REQUEST");
  int count = 0;
  while (auto request = co_await requests.next()) {
    check(*request == kRequest, "request == _REQUEST");
    ++count;
  }
  check(count == kNumStreamRequests - 1, "request_count == _NUM_STREAM_REQUESTS - 1");
  co_yield response();
  for (int i = 0; i < kNumStreamResponses - 1; ++i) {
    if (!co_await ctx.write(response())) co_return;
  }
}

Stream<Bytes> error_in_stream_stream(Reader<Bytes>& requests, ServerContext& /*ctx*/) {
  while (auto request = co_await requests.next()) {
    check(*request == kRequest, "request == _REQUEST");
    throw std::runtime_error("A testing RuntimeError!");
  }
  co_yield response();
}

Task<void> error_without_raise_in_stream_stream(Reader<Bytes>& requests, ServerContext& ctx) {
  while (auto request = co_await requests.next()) {
    check(*request == kRequest, "request == _REQUEST");
  }
  ctx.set_code(StatusCode::INTERNAL);
}

}  // namespace

void SeedService::register_methods(Server& server) {
  // Each handler is wrapped so that the service hears of it when it starts (the seed's
  // `_called` future and the seed-server's "call METHOD" line). The wrappers are plain
  // functions returning the coroutine: only `this` is captured, and the closure lives in
  // the server's method table, which outlives every call.
  auto with_request = [this](auto fn) {
    return [this, fn](Bytes request, ServerContext& ctx) {
      note_call(ctx.method());
      return fn(std::move(request), ctx);
    };
  };
  auto with_reader = [this](auto fn) {
    return [this, fn](Reader<Bytes>& requests, ServerContext& ctx) {
      note_call(ctx.method());
      return fn(requests, ctx);
    };
  };
  auto add = [&server](std::string_view path, MethodHandler handler) {
    server.add_method(std::string(path), std::move(handler));
  };

  add(kSimpleUnaryUnary, unary(with_request(&unary_unary)));
  add(kBlockForever, unary(with_request(&block_forever)));
  add(kBlockBriefly, unary(with_request(&block_briefly)));
  add(kUnaryStreamAsyncGen, server_streaming(with_request(&unary_stream_async_gen)));
  add(kUnaryStreamReaderWriter, server_streaming(with_request(&unary_stream_reader_writer)));
  add(kUnaryStreamEvillyMixed, server_streaming(with_request(&unary_stream_evilly_mixed)));
  add(kStreamUnaryAsyncGen, client_streaming(with_reader(&stream_unary_async_gen)));
  add(kStreamUnaryReaderWriter, client_streaming(with_reader(&stream_unary_reader_writer)));
  add(kStreamUnaryEvillyMixed, client_streaming(with_reader(&stream_unary_evilly_mixed)));
  add(kStreamStreamAsyncGen, bidi_streaming(with_reader(&stream_stream_async_gen)));
  add(kStreamStreamReaderWriter, bidi_streaming(with_reader(&stream_stream_reader_writer)));
  add(kStreamStreamEvillyMixed, bidi_streaming(with_reader(&stream_stream_evilly_mixed)));
  add(kErrorInStreamStream, bidi_streaming(with_reader(&error_in_stream_stream)));
  add(kErrorInStreamUnary, client_streaming(with_reader(&error_in_stream_unary)));
  add(kErrorWithoutRaiseInUnaryUnary, unary(with_request(&error_without_raise_in_unary_unary)));
  add(kErrorWithoutRaiseInStreamStream,
      bidi_streaming(with_reader(&error_without_raise_in_stream_stream)));
  add(kInvalidTrailingMetadata, unary(with_request(&invalid_trailing_metadata)));
}

void SeedService::note_call(std::string_view method) {
  {
    std::lock_guard lock(mu_);
    called_ = true;
  }
  cv_.notify_all();
  if (on_call) on_call(method);
}

bool SeedService::wait_for_call(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return called_; });
}

}  // namespace uringrpc::seed
