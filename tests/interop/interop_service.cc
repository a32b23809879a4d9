// The interop TestService's behaviour: payload sizes, echoed status and metadata,
// compression asked for per request and per response message, interval_us on the shard's
// timer wheel. What each rpc must do is in doc/interop-test-descriptions.md (grpc/grpc).
#include "interop_service.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace uringrpc::interop {

namespace {

using grpc::testing::EchoStatus;
using grpc::testing::Empty;
using grpc::testing::ResponseParameters;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;

constexpr const char* kEchoInitialKey = "x-grpc-test-echo-initial";
constexpr const char* kEchoTrailingKey = "x-grpc-test-echo-trailing-bin";

// "Echo Metadata": the two keys go back, the first in the response headers, the second
// in the trailers, whatever status the call ends with. Called before anything is sent.
void echo_metadata(ServerContext& ctx) {
  if (auto v = ctx.client_metadata_value(kEchoInitialKey)) ctx.add_initial_metadata(kEchoInitialKey, std::string(*v));
  if (auto v = ctx.client_metadata_value(kEchoTrailingKey)) {
    ctx.set_trailing_metadata({{kEchoTrailingKey, std::string(*v)}});
  }
}

// "Echo Status": a response_status with a non-OK code ends the call with exactly that code
// and message (the message byte for byte: whitespace, non-BMP characters and all).
std::optional<Status> echoed_status(const EchoStatus& s) {
  if (s.code() == 0) return std::nullopt;
  return Status{static_cast<StatusCode>(s.code()), s.message()};
}

// COMPRESSABLE is the only payload type the protocol defines; the spec answers any other
// with INVALID_ARGUMENT.
std::optional<Status> check_response_type(grpc::testing::PayloadType type) {
  if (type == grpc::testing::COMPRESSABLE) return std::nullopt;
  return Status{StatusCode::INVALID_ARGUMENT, "unsupported response_type " + std::to_string(type)};
}

// "CompressedRequest": with expect_compressed present, the request's compressed flag must
// say the same, either way (a probe sent uncompressed with true must fail).
std::optional<Status> check_compression(bool has_expect, bool expect, const ServerContext& ctx) {
  if (!has_expect || expect == ctx.last_read_compressed()) return std::nullopt;
  return Status{StatusCode::INVALID_ARGUMENT, expect ? "expected a compressed request, got an uncompressed one"
                                                     : "expected an uncompressed request, got a compressed one"};
}

void fill_payload(grpc::testing::Payload* payload, int32_t size) {
  payload->set_type(grpc::testing::COMPRESSABLE);
  payload->mutable_body()->assign(static_cast<size_t>(size), '\0');
}

void end_with(ServerContext& ctx, const Status& s) {
  ctx.set_code(s.code);
  ctx.set_details(s.message);
}

// Checks every ResponseParameters of a request before the first response goes out.
std::optional<Status> check_parameters(const StreamingOutputCallRequest& req) {
  if (auto bad = check_response_type(req.response_type())) return bad;
  for (const ResponseParameters& p : req.response_parameters()) {
    if (p.size() < 0 || p.interval_us() < 0) {
      return Status{StatusCode::INVALID_ARGUMENT, "negative size or interval_us in response_parameters"};
    }
  }
  return std::nullopt;
}

// One response per ResponseParameters, each after its interval_us (which accumulates, as
// a sleep before each send), compressed only where the parameters ask. False once the
// call can no longer send.
Task<bool> respond(const StreamingOutputCallRequest& req, ServerContext& ctx) {
  for (const ResponseParameters& p : req.response_parameters()) {
    if (p.interval_us() > 0) co_await sleep_for(std::chrono::microseconds(p.interval_us()));
    if (ctx.cancelled()) co_return false;
    StreamingOutputCallResponse resp;
    fill_payload(resp.mutable_payload(), p.size());
    if (!co_await ctx.write(resp, {.no_compress = !p.compressed().value()})) co_return false;
  }
  co_return true;
}

// Streaming responses are compressed per message: the call's algorithm is gzip and each
// message not marked `compressed` goes out with no_compress. Chosen before any response,
// since the algorithm is named in the response headers.
void compress_per_message(ServerContext& ctx) { ctx.set_compression(Compression::kGzip); }

}  // namespace

// Every rpc starts here: the echoed keys, and which instance answers (x-served-by) when
// the server was given a name, so a test behind a load balancer sees where calls land.
void InteropTestService::start_call(ServerContext& ctx) const {
  echo_metadata(ctx);
  if (!served_by_.empty()) ctx.add_initial_metadata(kServedByKey, served_by_);
}

Task<Empty> InteropTestService::EmptyCall(Empty, ServerContext& ctx) {
  start_call(ctx);
  co_return Empty();
}

Task<SimpleResponse> InteropTestService::UnaryCall(SimpleRequest req, ServerContext& ctx) {
  start_call(ctx);
  if (auto bad = check_compression(req.has_expect_compressed(), req.expect_compressed().value(), ctx)) co_return *bad;
  if (auto status = echoed_status(req.response_status())) co_return *status;
  if (auto bad = check_response_type(req.response_type())) co_return *bad;
  if (req.response_size() < 0) co_return Status{StatusCode::INVALID_ARGUMENT, "negative response_size"};
  if (req.response_compressed().value()) ctx.set_compression(Compression::kGzip);
  SimpleResponse resp;
  fill_payload(resp.mutable_payload(), req.response_size());
  co_return resp;
}

// Answers differently every time (the time in nanoseconds) and lets proxies cache it.
Task<SimpleResponse> InteropTestService::CacheableUnaryCall(SimpleRequest, ServerContext& ctx) {
  start_call(ctx);
  ctx.add_initial_metadata("cache-control", "max-age=60, public");
  SimpleResponse resp;
  resp.mutable_payload()->set_type(grpc::testing::COMPRESSABLE);
  resp.mutable_payload()->set_body(std::to_string(std::chrono::system_clock::now().time_since_epoch().count()));
  co_return resp;
}

Stream<StreamingOutputCallResponse> InteropTestService::StreamingOutputCall(StreamingOutputCallRequest req,
                                                                            ServerContext& ctx) {
  start_call(ctx);
  if (auto status = echoed_status(req.response_status())) co_return end_with(ctx, *status);
  if (auto bad = check_parameters(req)) co_return end_with(ctx, *bad);
  compress_per_message(ctx);
  co_await respond(req, ctx);
}

Task<StreamingInputCallResponse> InteropTestService::StreamingInputCall(Reader<StreamingInputCallRequest>& reader,
                                                                        ServerContext& ctx) {
  start_call(ctx);
  size_t total = 0;
  while (auto req = co_await reader.next()) {
    if (auto bad = check_compression(req->has_expect_compressed(), req->expect_compressed().value(), ctx)) {
      co_return *bad;
    }
    total += req->payload().body().size();
  }
  StreamingInputCallResponse resp;
  resp.set_aggregated_payload_size(static_cast<int32_t>(total));
  co_return resp;
}

// Answers each request as it arrives; a request with a response_status ends the call
// with it, and later requests are not processed.
Stream<StreamingOutputCallResponse> InteropTestService::FullDuplexCall(
    Reader<StreamingOutputCallRequest>& reader, ServerContext& ctx) {
  start_call(ctx);
  compress_per_message(ctx);
  while (auto req = co_await reader.next()) {
    if (auto status = echoed_status(req->response_status())) co_return end_with(ctx, *status);
    if (auto bad = check_parameters(*req)) co_return end_with(ctx, *bad);
    if (!co_await respond(*req, ctx)) co_return;
  }
}

// Reads every request first and answers them all after the client half-closes.
Stream<StreamingOutputCallResponse> InteropTestService::HalfDuplexCall(
    Reader<StreamingOutputCallRequest>& reader, ServerContext& ctx) {
  start_call(ctx);
  compress_per_message(ctx);
  std::vector<StreamingOutputCallRequest> requests;
  while (auto req = co_await reader.next()) {
    if (auto status = echoed_status(req->response_status())) co_return end_with(ctx, *status);
    if (auto bad = check_parameters(*req)) co_return end_with(ctx, *bad);
    requests.push_back(std::move(*req));
  }
  for (const auto& req : requests) {
    if (!co_await respond(req, ctx)) co_return;
  }
}

}  // namespace uringrpc::interop
