// The C++ twin of the seed, gRPC's tests_aio/unit/server_test.py: one test per Python test,
// same name in CamelCase, same assertions, against a real uringrpc Server and the real
// gRPC C++ client over loopback. The handlers are in seed_service.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"
#include "seed_service.h"
#include "uringrpc/errors.h"
#include "uringrpc/server.h"
#include "uringrpc/tls.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using uringrpc::Server;
using uringrpc::ServerOptions;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::start_unary_call;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;
namespace seed = uringrpc::seed;

// tests/unit/framework/common/test_constants.py
constexpr std::chrono::milliseconds kShortTimeout = 4s;
constexpr std::chrono::milliseconds kLongTimeout = 3000s;
constexpr int kMaximumConcurrentRpcs = 5;

// Python's calls have no deadline; ours have one so a broken server cannot hang the suite.
// Calls that must outlive a SHORT_TIMEOUT grace get a deadline well past it, so the status
// the test sees comes from the server (UNAVAILABLE), never from the deadline.
constexpr std::chrono::milliseconds kCallTimeout = 4s;
constexpr std::chrono::milliseconds kBlockingCallTimeout = 20s;

const std::string kRequest(seed::kRequest);
const std::string kResponse(seed::kResponse);
const std::string kSimpleUnaryUnary(seed::kSimpleUnaryUnary);
const std::string kBlockForever(seed::kBlockForever);
const std::string kBlockBriefly(seed::kBlockBriefly);

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
double seconds(std::chrono::milliseconds d) { return std::chrono::duration<double>(d).count(); }

// _start_test_server + TestServer.setUp / tearDown.
class TestServer : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(ServerOptions{});
    service_.register_methods(*server_);
    port_ = server_->add_insecure_port("[::]:0");
    ASSERT_GT(port_, 0);
    server_->start();
    channel_ = make_channel("localhost:" + std::to_string(port_));
  }

  void TearDown() override {
    channel_.reset();
    server_->stop();
  }

  std::unique_ptr<Server> server_;
  seed::SeedService service_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

// Writes `count` requests, then half-closes.
void write_requests(StreamingCall& call, int count) {
  for (int i = 0; i < count; ++i) EXPECT_TRUE(call.write(kRequest)) << "write #" << i;
  EXPECT_TRUE(call.writes_done());
}

// test_unary_unary
TEST_F(TestServer, UnaryUnary) {
  CallResult r = unary_call(channel_, kSimpleUnaryUnary, kRequest, kCallTimeout);
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], kResponse);
}

// test_unary_stream_async_generator
TEST_F(TestServer, UnaryStreamAsyncGenerator) {
  StreamingCall call(channel_, std::string(seed::kUnaryStreamAsyncGen), kCallTimeout);
  write_requests(call, 1);
  int response_cnt = 0;
  while (auto response = call.read()) {
    ++response_cnt;
    EXPECT_EQ(kResponse, *response);
  }
  EXPECT_EQ(seed::kNumStreamResponses, response_cnt);
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::OK) << describe(r);
}

// test_unary_stream_reader_writer
TEST_F(TestServer, UnaryStreamReaderWriter) {
  StreamingCall call(channel_, std::string(seed::kUnaryStreamReaderWriter), kCallTimeout);
  write_requests(call, 1);
  for (int i = 0; i < seed::kNumStreamResponses; ++i) {
    auto response = call.read();
    ASSERT_TRUE(response.has_value()) << "response #" << i << ": " << describe(call.finish());
    EXPECT_EQ(kResponse, *response);
  }
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::OK) << describe(r);
}

// test_unary_stream_evilly_mixed
// The Python test reads one response with call.read() and then iterates the call with
// `async for`, expecting aio.UsageError: that error comes from the *client* library, which
// forbids mixing its two reading APIs on one call. The C++ client has one reading API, so
// there is nothing to mix on the client side. What the test exercises on the server is the
// handler mixing co_yield with ctx.write(): all five responses must arrive, in order, and
// the RPC must end OK (the seed README's mapping table, "evilly mixed").
TEST_F(TestServer, UnaryStreamEvillyMixed) {
  StreamingCall call(channel_, std::string(seed::kUnaryStreamEvillyMixed), kCallTimeout);
  write_requests(call, 1);
  // "Uses reader API"
  auto first = call.read();
  ASSERT_TRUE(first.has_value()) << describe(call.finish());
  EXPECT_EQ(kResponse, *first);
  // The rest of the stream (Python: `async for`, rejected client-side with UsageError).
  int rest = 0;
  while (auto response = call.read()) {
    ++rest;
    EXPECT_EQ(kResponse, *response);
  }
  EXPECT_EQ(seed::kNumStreamResponses - 1, rest);
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::OK) << describe(r);
}

// Shared by the stream-unary tests: write 3, half-close, one response, OK.
void expect_stream_unary_ok(const std::shared_ptr<grpc::Channel>& channel, std::string_view method) {
  StreamingCall call(channel, std::string(method), kCallTimeout);
  write_requests(call, seed::kNumStreamRequests);
  auto response = call.read();
  ASSERT_TRUE(response.has_value()) << describe(call.finish());
  EXPECT_EQ(kResponse, *response);
  EXPECT_FALSE(call.read().has_value()) << "a stream-unary call returned a second response";
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::OK) << describe(r);
}

// test_stream_unary_async_generator
TEST_F(TestServer, StreamUnaryAsyncGenerator) { expect_stream_unary_ok(channel_, seed::kStreamUnaryAsyncGen); }

// test_stream_unary_async_generator_with_request_iter
// Python hands the call a request iterator; the client library drains it and half-closes
// with the last message. The twin does the same: the last request goes with the half-close
// (WriteLast: END_STREAM on the last DATA frame), and `finished` records that the
// iterator was drained.
TEST_F(TestServer, StreamUnaryAsyncGeneratorWithRequestIter) {
  bool finished = false;
  int produced = 0;
  auto request_gen = [&]() -> std::optional<std::string> {
    if (produced == seed::kNumStreamRequests) {
      finished = true;
      return std::nullopt;
    }
    ++produced;
    return kRequest;
  };

  StreamingCall call(channel_, std::string(seed::kStreamUnaryAsyncGen), kCallTimeout);
  std::optional<std::string> next = request_gen();
  while (next) {
    std::optional<std::string> after = request_gen();
    if (after) {
      EXPECT_TRUE(call.write(*next));
    } else {
      EXPECT_TRUE(call.write_last(*next));
    }
    next = std::move(after);
  }

  auto response = call.read();
  ASSERT_TRUE(response.has_value()) << describe(call.finish());
  EXPECT_EQ(kResponse, *response);
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::OK) << describe(r);
  EXPECT_EQ(finished, true);
}

// test_stream_unary_reader_writer
TEST_F(TestServer, StreamUnaryReaderWriter) { expect_stream_unary_ok(channel_, seed::kStreamUnaryReaderWriter); }

// test_stream_unary_evilly_mixed
TEST_F(TestServer, StreamUnaryEvillyMixed) { expect_stream_unary_ok(channel_, seed::kStreamUnaryEvillyMixed); }

// Shared by the stream-stream tests: write 3, half-close, read 5, OK.
void expect_stream_stream_ok(const std::shared_ptr<grpc::Channel>& channel, std::string_view method) {
  StreamingCall call(channel, std::string(method), kCallTimeout);
  write_requests(call, seed::kNumStreamRequests);
  for (int i = 0; i < seed::kNumStreamResponses; ++i) {
    auto response = call.read();
    ASSERT_TRUE(response.has_value()) << "response #" << i << ": " << describe(call.finish());
    EXPECT_EQ(kResponse, *response);
  }
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::OK) << describe(r);
}

// test_stream_stream_async_generator
TEST_F(TestServer, StreamStreamAsyncGenerator) { expect_stream_stream_ok(channel_, seed::kStreamStreamAsyncGen); }

// test_stream_stream_reader_writer
TEST_F(TestServer, StreamStreamReaderWriter) { expect_stream_stream_ok(channel_, seed::kStreamStreamReaderWriter); }

// test_stream_stream_evilly_mixed
TEST_F(TestServer, StreamStreamEvillyMixed) { expect_stream_stream_ok(channel_, seed::kStreamStreamEvillyMixed); }

// test_shutdown
TEST_F(TestServer, Shutdown) {
  auto start = Clock::now();
  server_->stop();
  // Ensures no SIGSEGV triggered, and ends within timeout.
  EXPECT_LT(seconds_since(start), seconds(kShortTimeout));
}

// test_shutdown_after_call
TEST_F(TestServer, ShutdownAfterCall) {
  CallResult r = unary_call(channel_, kSimpleUnaryUnary, kRequest, kCallTimeout);
  EXPECT_TRUE(r.ok()) << describe(r);
  auto start = Clock::now();
  server_->stop();
  EXPECT_LT(seconds_since(start), seconds(kShortTimeout));
}

// test_graceful_shutdown_success
TEST_F(TestServer, GracefulShutdownSuccess) {
  auto call = start_unary_call(channel_, kBlockBriefly, kRequest, kBlockingCallTimeout);
  ASSERT_TRUE(service_.wait_for_call());

  auto shutdown_start_time = Clock::now();
  server_->stop(kShortTimeout);
  double grace_period_length = seconds_since(shutdown_start_time);
  EXPECT_GT(grace_period_length, seconds(kShortTimeout) / 3);

  // Validates the states.
  CallResult r = call.get();
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(kResponse, r.responses[0]);
}

// test_graceful_shutdown_failed
TEST_F(TestServer, GracefulShutdownFailed) {
  auto call = start_unary_call(channel_, kBlockForever, kRequest, kBlockingCallTimeout);
  ASSERT_TRUE(service_.wait_for_call());

  server_->stop(kShortTimeout);

  CallResult r = call.get();
  EXPECT_EQ(grpc::StatusCode::UNAVAILABLE, r.code) << describe(r);
}

// Runs server.stop(grace) (or stop() for nullopt) on one thread per entry, all at once,
// as asyncio.gather(server.stop(...), ...) does.
void concurrent_stops(Server& server, const std::vector<std::optional<std::chrono::milliseconds>>& graces) {
  std::vector<std::thread> threads;
  for (const auto& grace : graces) {
    threads.emplace_back([&server, grace] {
      if (grace) {
        server.stop(*grace);
      } else {
        server.stop();
      }
    });
  }
  for (auto& t : threads) t.join();
}

// test_concurrent_graceful_shutdown
TEST_F(TestServer, ConcurrentGracefulShutdown) {
  auto call = start_unary_call(channel_, kBlockBriefly, kRequest, kBlockingCallTimeout);
  ASSERT_TRUE(service_.wait_for_call());

  // Expects the shortest grace period to be effective.
  auto shutdown_start_time = Clock::now();
  concurrent_stops(*server_, {kLongTimeout, kShortTimeout, kLongTimeout});
  double grace_period_length = seconds_since(shutdown_start_time);
  EXPECT_GT(grace_period_length, seconds(kShortTimeout) / 3);

  CallResult r = call.get();
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(kResponse, r.responses[0]);
}

// test_concurrent_graceful_shutdown_immediate
TEST_F(TestServer, ConcurrentGracefulShutdownImmediate) {
  auto call = start_unary_call(channel_, kBlockForever, kRequest, kBlockingCallTimeout);
  ASSERT_TRUE(service_.wait_for_call());

  // Expects no grace period, due to the "server.stop(None)".
  auto shutdown_start_time = Clock::now();
  concurrent_stops(*server_, {kLongTimeout, std::nullopt, kShortTimeout, kLongTimeout});
  // The Python test states this expectation in a comment only; the twin checks it.
  EXPECT_LT(seconds_since(shutdown_start_time), seconds(kShortTimeout));

  CallResult r = call.get();
  EXPECT_EQ(grpc::StatusCode::UNAVAILABLE, r.code) << describe(r);
}

// test_shutdown_before_call
TEST_F(TestServer, ShutdownBeforeCall) {
  server_->stop();

  // Ensures the server is cleaned up at this point.
  // Some proper exception should be raised.
  CallResult r = unary_call(channel_, kSimpleUnaryUnary, kRequest, kCallTimeout);
  EXPECT_NE(grpc::StatusCode::OK, r.code) << describe(r);
}

// test_unimplemented
TEST_F(TestServer, Unimplemented) {
  CallResult r = unary_call(channel_, std::string(seed::kUnimplementedMethod), kRequest, kCallTimeout);
  EXPECT_EQ(grpc::StatusCode::UNIMPLEMENTED, r.code) << describe(r);
}

// test_shutdown_during_stream_stream
TEST_F(TestServer, ShutdownDuringStreamStream) {
  StreamingCall call(channel_, std::string(seed::kStreamStreamAsyncGen), kBlockingCallTimeout);

  // Don't half close the RPC yet, keep it alive.
  ASSERT_TRUE(call.write(kRequest));
  // Not in the Python test: makes sure the RPC has reached its handler, so the stop below
  // has a live call to cancel rather than racing with the request's arrival.
  ASSERT_TRUE(service_.wait_for_call());
  server_->stop();

  CallResult r = call.finish();
  EXPECT_EQ(grpc::StatusCode::UNAVAILABLE, r.code) << describe(r);
  // No segfault
}

// test_error_in_stream_stream
TEST_F(TestServer, ErrorInStreamStream) {
  StreamingCall call(channel_, std::string(seed::kErrorInStreamStream), kCallTimeout);

  // Don't half close the RPC yet, keep it alive.
  ASSERT_TRUE(call.write(kRequest));

  // Don't segfault here
  CallResult r = call.finish();
  EXPECT_EQ(grpc::StatusCode::UNKNOWN, r.code) << describe(r);
}

// test_error_without_raise_in_unary_unary
TEST_F(TestServer, ErrorWithoutRaiseInUnaryUnary) {
  CallResult r = unary_call(channel_, std::string(seed::kErrorWithoutRaiseInUnaryUnary), kRequest, kCallTimeout);
  EXPECT_EQ(grpc::StatusCode::INTERNAL, r.code) << describe(r);
}

// test_error_without_raise_in_stream_stream
TEST_F(TestServer, ErrorWithoutRaiseInStreamStream) {
  StreamingCall call(channel_, std::string(seed::kErrorWithoutRaiseInStreamStream), kCallTimeout);
  write_requests(call, seed::kNumStreamRequests);
  CallResult r = call.finish();
  EXPECT_EQ(grpc::StatusCode::INTERNAL, r.code) << describe(r);
}

// test_error_in_stream_unary
TEST_F(TestServer, ErrorInStreamUnary) {
  StreamingCall call(channel_, std::string(seed::kErrorInStreamUnary), kCallTimeout);
  // The request generator: the handler fails after the first request, so later writes may
  // find the call already over; like the Python generator, they are not checked.
  for (int i = 0; i < seed::kNumStreamRequests; ++i) {
    if (!call.write(kRequest)) break;
  }
  call.writes_done();
  CallResult r = call.finish();
  EXPECT_EQ(grpc::StatusCode::UNKNOWN, r.code) << describe(r);
}

// test_port_binding_exception
TEST_F(TestServer, PortBindingException) {
  Server server(ServerOptions{.listen = {.so_reuseport = false}});
  int port = server.add_insecure_port("localhost:0");
  ASSERT_GT(port, 0);
  std::string bind_address = "localhost:" + std::to_string(port);

  EXPECT_THROW(server.add_insecure_port(bind_address), uringrpc::BindError);

  const auto& pki = uringrpc::testing::test_pki();
  auto server_credentials = uringrpc::TlsCredentials::from_pem(pki.server_chain_pem, pki.server_key_pem);
  EXPECT_THROW(server.add_secure_port(bind_address, server_credentials), uringrpc::BindError);
}

// test_maximum_concurrent_rpcs
TEST_F(TestServer, MaximumConcurrentRpcs) {
  // Build the server with concurrent rpc argument
  Server server(ServerOptions{.calls = {.max_concurrent = kMaximumConcurrentRpcs}});
  seed::SeedService service;
  service.register_methods(server);
  int port = server.add_insecure_port("localhost:0");
  ASSERT_GT(port, 0);
  std::string bind_address = "localhost:" + std::to_string(port);
  server.start();
  // Build the channel
  auto channel = make_channel(bind_address);
  // Deplete the concurrent quota with 3 times of max RPCs
  std::vector<std::future<CallResult>> rpc_tasks;
  for (int i = 0; i < 3 * kMaximumConcurrentRpcs; ++i) {
    rpc_tasks.push_back(start_unary_call(channel, kBlockBriefly, kRequest, kBlockingCallTimeout));
  }
  std::vector<CallResult> exceptions;
  for (auto& task : rpc_tasks) {
    CallResult r = task.get();
    if (!r.ok()) exceptions.push_back(std::move(r));
  }

  // Check whether the number of tasks raised RESOURCE_EXHAUSTED is roughly
  // 2 * _MAXIMUM_CONCURRENT_RPCS.
  EXPECT_NEAR(static_cast<double>(exceptions.size()), 2.0 * kMaximumConcurrentRpcs,
              static_cast<double>(kMaximumConcurrentRpcs));
  for (const auto& exception : exceptions) {
    EXPECT_EQ(grpc::StatusCode::RESOURCE_EXHAUSTED, exception.code) << describe(exception);
    EXPECT_NE(exception.details.find("Concurrent RPC limit exceeded"), std::string::npos)
        << describe(exception);
  }

  // Clean-up
  channel.reset();
  server.stop(0ms);
}

// test_invalid_trailing_metadata
TEST_F(TestServer, InvalidTrailingMetadata) {
  CallResult r = unary_call(channel_, std::string(seed::kInvalidTrailingMetadata), kRequest, kCallTimeout);
  EXPECT_EQ(grpc::StatusCode::UNKNOWN, r.code) << describe(r);
  EXPECT_NE(r.details.find("trailing"), std::string::npos) << describe(r);
}

}  // namespace
