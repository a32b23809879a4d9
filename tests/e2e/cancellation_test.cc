// End-to-end cancellation by the client (ClientContext::TryCancel → RST_STREAM CANCEL):
// the handler's frame is destroyed wherever it is suspended (read, write backpressure,
// sleep, offload), ServerContext::cancelled() says so, and the server keeps serving.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

// Counts destroyed handler frames and how many of them saw ctx.cancelled() at that point
// (the ServerContext belongs to the call, which outlives the frame).
struct FrameGuard {
  std::atomic<int>* destroyed;
  std::atomic<int>* cancelled_seen;
  ServerContext* ctx;
  ~FrameGuard() {
    if (ctx->cancelled()) cancelled_seen->fetch_add(1);
    destroyed->fetch_add(1);
  }
};

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

class Cancellation : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});

    // Reads without writing and counts what it got; returns only at half-close.
    server_->add_method("/e2e.Cancel/ReadForever",
                        uringrpc::bidi_streaming([this](uringrpc::Reader<Bytes>& reader,
                                                        ServerContext& ctx) -> Task<void> {
                          FrameGuard guard{&destroyed_, &cancelled_seen_, &ctx};
                          while (auto m = co_await reader.next()) reads_.fetch_add(1);
                          completed_.fetch_add(1);
                        }));

    // Echo: each request back as a response, until half-close.
    server_->add_method("/e2e.Cancel/Echo",
                        uringrpc::bidi_streaming([this](uringrpc::Reader<Bytes>& reader,
                                                        ServerContext& ctx) -> Task<void> {
                          FrameGuard guard{&destroyed_, &cancelled_seen_, &ctx};
                          while (auto m = co_await reader.next()) {
                            reads_.fetch_add(1);
                            co_await ctx.write(*m);
                          }
                          completed_.fetch_add(1);
                        }));

    // Writes 64 KiB messages forever: once the client stops reading, flow control parks it
    // in ctx.write().
    server_->add_method("/e2e.Cancel/Flood",
                        uringrpc::server_streaming([this](Bytes, ServerContext& ctx) -> Task<void> {
                          FrameGuard guard{&destroyed_, &cancelled_seen_, &ctx};
                          Bytes chunk(std::string(64 << 10, 'f'));
                          while (co_await ctx.write(chunk)) writes_.fetch_add(1);
                          completed_.fetch_add(1);
                        }));

    // Blocking work on the offload pool while the call is cancelled.
    server_->add_method("/e2e.Cancel/Offload",
                        uringrpc::unary([this](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          FrameGuard guard{&destroyed_, &cancelled_seen_, &ctx};
                          entered_.fetch_add(1);
                          int v = co_await uringrpc::offload([this] {
                            std::this_thread::sleep_for(300ms);
                            offload_ran_.fetch_add(1);
                            return 7;
                          });
                          completed_.fetch_add(1);
                          co_return Bytes(req.str() + std::to_string(v));
                        }));

    // Records whether the context looked cancelled while the call was healthy.
    server_->add_method("/e2e.Cancel/Unary",
                        uringrpc::unary([this](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          if (ctx.cancelled()) cancelled_while_healthy_.fetch_add(1);
                          co_await uringrpc::sleep_for(1ms);
                          if (ctx.cancelled()) cancelled_while_healthy_.fetch_add(1);
                          co_return req;
                        }));

    port_ = server_->add_insecure_port("[::]:0");
    ASSERT_GT(port_, 0);
    server_->start();
    target_ = "localhost:" + std::to_string(port_);
    channel_ = make_channel(target_);
  }

  void TearDown() override {
    channel_.reset();
    if (server_) server_->stop();
  }

  void expect_server_healthy() {
    CallResult same = unary_call(channel_, "/e2e.Cancel/Unary", "same-channel", 10s);
    EXPECT_TRUE(same.ok()) << "on the channel that cancelled: " << describe(same);
    if (same.ok()) {
      EXPECT_EQ(same.responses.at(0), "same-channel");
    }
    auto fresh_channel = make_channel(target_);
    CallResult fresh = unary_call(fresh_channel, "/e2e.Cancel/Unary", "fresh-channel", 10s);
    EXPECT_TRUE(fresh.ok()) << "on a fresh channel: " << describe(fresh);
    if (fresh.ok()) {
      EXPECT_EQ(fresh.responses.at(0), "fresh-channel");
    }
  }

  std::atomic<int> destroyed_{0};
  std::atomic<int> cancelled_seen_{0};
  std::atomic<int> completed_{0};
  std::atomic<int> reads_{0};
  std::atomic<int> writes_{0};
  std::atomic<int> entered_{0};
  std::atomic<int> offload_ran_{0};
  std::atomic<int> cancelled_while_healthy_{0};
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(Cancellation, ClientCancelOfBidiCallWaitingOnReadDestroysHandler) {
  StreamingCall call(channel_, "/e2e.Cancel/ReadForever", 10s);
  ASSERT_TRUE(call.started());
  ASSERT_TRUE(call.write("one"));
  ASSERT_TRUE(wait_until([&] { return reads_.load() == 1; }, 5s)) << "the handler never got the request";
  // The handler is now suspended in reader.next().
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(destroyed_.load(), 0);

  call.cancel();
  CallResult r = call.finish();
  // Timed from the client having finished the cancel: on a machine at load average 10 the
  // gRPC client itself has been seen taking seconds to get there.
  auto cancelled_at = Clock::now();
  EXPECT_EQ(r.code, grpc::StatusCode::CANCELLED) << describe(r);
  EXPECT_TRUE(wait_until([&] { return destroyed_.load() == 1; }, 1s))
      << "the handler was not destroyed within 1 s of the client's cancel";
  EXPECT_LT(Clock::now() - cancelled_at, 1100ms);
  EXPECT_EQ(completed_.load(), 0) << "the read loop ended normally instead of being cancelled";
  EXPECT_EQ(cancelled_seen_.load(), 1) << "ServerContext::cancelled() was false when the frame went";
  expect_server_healthy();
}

TEST_F(Cancellation, ClientCancelOfEchoCallAfterExchangeDestroysHandler) {
  StreamingCall call(channel_, "/e2e.Cancel/Echo", 10s);
  ASSERT_TRUE(call.write("hello"));
  auto echo = call.read();
  ASSERT_TRUE(echo.has_value()) << describe(call.finish());
  EXPECT_EQ(*echo, "hello");
  call.cancel();
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::CANCELLED) << describe(r);
  EXPECT_TRUE(wait_until([&] { return destroyed_.load() == 1; }, 1s));
  expect_server_healthy();
}

// Regression (fixed in f706ecc): a drained write queue used to resume a handler parked
// in reader.next() with no message, which read as the client's half-close, so the call
// ended OK after the first echo while the client was still sending.
TEST_F(Cancellation, BidiReadAfterWriteWaitsForTheNextMessage) {
  StreamingCall call(channel_, "/e2e.Cancel/Echo", 5s);
  ASSERT_TRUE(call.write("a"));
  auto first = call.read();
  ASSERT_TRUE(first.has_value()) << describe(call.finish());
  EXPECT_EQ(*first, "a");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(completed_.load(), 0) << "the handler's read loop ended although the client did not half-close";
  EXPECT_TRUE(call.write("b")) << "the call ended under the client";
  auto second = call.read();
  EXPECT_TRUE(second.has_value());
  if (second) {
    EXPECT_EQ(*second, "b");
  }
  EXPECT_TRUE(call.writes_done());
  EXPECT_FALSE(call.read().has_value());
  CallResult r = call.finish();
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.size(), 2u);
}

TEST_F(Cancellation, ClientCancelOfWriterBlockedOnFlowControlDestroysHandler) {
  StreamingCall call(channel_, "/e2e.Cancel/Flood", 10s);
  ASSERT_TRUE(call.write_last("go"));
  for (int i = 0; i < 2; ++i) {
    auto m = call.read();
    ASSERT_TRUE(m.has_value()) << describe(call.finish());
    EXPECT_EQ(m->size(), 64u << 10);
  }
  // Stop reading: the windows fill up and the handler parks in ctx.write().
  ASSERT_TRUE(wait_until(
      [&, last = -1]() mutable {
        int now = writes_.load();
        bool stable = now == last;
        last = now;
        if (!stable) std::this_thread::sleep_for(50ms);
        return stable;
      },
      3s))
      << "the handler kept writing: no backpressure";
  EXPECT_EQ(destroyed_.load(), 0);
  call.cancel();
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::CANCELLED) << describe(r);
  EXPECT_TRUE(wait_until([&] { return destroyed_.load() == 1; }, 1s))
      << "the writer parked on backpressure was not destroyed within 1 s";
  EXPECT_EQ(completed_.load(), 0);
  EXPECT_EQ(cancelled_seen_.load(), 1);
  expect_server_healthy();
}

TEST_F(Cancellation, ClientCancelDuringOffloadDropsResultAndDestroysHandler) {
  StreamingCall call(channel_, "/e2e.Cancel/Offload", 10s);
  ASSERT_TRUE(call.write_last("x"));
  ASSERT_TRUE(wait_until([&] { return entered_.load() == 1; }, 5s));
  call.cancel();
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::CANCELLED) << describe(r);
  EXPECT_TRUE(wait_until([&] { return destroyed_.load() == 1; }, 1s));
  // The pool still runs the function to its end; its result goes nowhere.
  EXPECT_TRUE(wait_until([&] { return offload_ran_.load() == 1; }, 5s));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(completed_.load(), 0) << "the handler resumed after its frame was destroyed";
  expect_server_healthy();
  // The pool is still usable.
  CallResult again = unary_call(channel_, "/e2e.Cancel/Offload", "y", 10s);
  ASSERT_TRUE(again.ok()) << describe(again);
  EXPECT_EQ(again.responses.at(0), "y7");
}

TEST_F(Cancellation, ManyCancelledCallsAllDestroyedAndServerKeepsServing) {
  constexpr int kCalls = 20;
  std::vector<std::unique_ptr<StreamingCall>> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::make_unique<StreamingCall>(channel_, "/e2e.Cancel/ReadForever", 10s));
    ASSERT_TRUE(calls.back()->write("m" + std::to_string(i)));
  }
  ASSERT_TRUE(wait_until([&] { return reads_.load() == kCalls; }, 5s)) << "reads=" << reads_.load();
  for (auto& c : calls) c->cancel();
  for (auto& c : calls) {
    CallResult r = c->finish();
    EXPECT_EQ(r.code, grpc::StatusCode::CANCELLED) << describe(r);
  }
  EXPECT_TRUE(wait_until([&] { return destroyed_.load() == kCalls; }, 1s)) << "destroyed=" << destroyed_.load();
  EXPECT_EQ(cancelled_seen_.load(), kCalls);
  EXPECT_EQ(completed_.load(), 0);
  calls.clear();
  expect_server_healthy();
}

TEST_F(Cancellation, CancelledIsFalseForAHealthyCall) {
  for (int i = 0; i < 3; ++i) {
    CallResult r = unary_call(channel_, "/e2e.Cancel/Unary", "ok", 10s);
    ASSERT_TRUE(r.ok()) << describe(r);
  }
  EXPECT_EQ(cancelled_while_healthy_.load(), 0);
}

TEST_F(Cancellation, HalfCloseEndsReadLoopNormally) {
  StreamingCall call(channel_, "/e2e.Cancel/ReadForever", 5s);
  ASSERT_TRUE(call.write("1"));
  ASSERT_TRUE(call.write("2"));
  ASSERT_TRUE(call.writes_done());
  EXPECT_FALSE(call.read().has_value());
  CallResult r = call.finish();
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(wait_until([&] { return destroyed_.load() == 1; }, 1s));
  EXPECT_EQ(reads_.load(), 2);
  EXPECT_EQ(completed_.load(), 1);
  EXPECT_EQ(cancelled_seen_.load(), 0) << "cancelled() was true for a call that ended normally";
}

}  // namespace
