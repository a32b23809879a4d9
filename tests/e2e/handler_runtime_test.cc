// Handler runtime, end to end with the real gRPC client: offload() to the pool,
// sleep_for() on the timer wheel, cancellation of both, zero-copy request delivery, and
// the server life cycle seen from a handler (stop inside a handler, destructor stops).
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "../common/grpc_test_client.h"
#include "loop/shard.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::unary_call;

// Sets a flag when the handler frame holding it is destroyed (returned or cancelled).
struct FrameGone {
  std::atomic<bool>* flag;
  ~FrameGone() { flag->store(true); }
};

std::string thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

class HandlerRuntime : public ::testing::Test {
 protected:
  void start(uringrpc::ServerOptions options = {}) {
    server_ = std::make_unique<uringrpc::Server>(options);
    server_->add_method("/rt.Svc/Offload", uringrpc::unary([this](Bytes req, ServerContext&) -> Task<Bytes> {
      std::string shard_before = thread_name();
      std::string pool_thread = co_await uringrpc::offload([&] {
        std::this_thread::sleep_for(50ms);  // blocking work: must not run on the shard
        return thread_name();
      });
      std::string shard_after = thread_name();
      co_return Bytes(req.str() + "|" + shard_before + "|" + pool_thread + "|" + shard_after);
    }));
    server_->add_method("/rt.Svc/OffloadThrows", uringrpc::unary([](Bytes, ServerContext&) -> Task<Bytes> {
      co_await uringrpc::offload([]() -> int { throw std::out_of_range("from the pool"); });
      co_return Bytes("unreachable");
    }));
    server_->add_method("/rt.Svc/OffloadThenCancelled", uringrpc::unary([this](Bytes, ServerContext&) -> Task<Bytes> {
      FrameGone gone{&offload_frame_gone_};
      co_await uringrpc::offload([this] {
        std::this_thread::sleep_for(500ms);
        offload_fn_finished_ = true;
      });
      offload_resumed_after_cancel_ = true;
      co_return Bytes("late");
    }));
    server_->add_method("/rt.Svc/Sleep", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
      auto start = std::chrono::steady_clock::now();
      co_await uringrpc::sleep_for(std::chrono::milliseconds(std::stoi(req.str())));
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      co_return Bytes(std::to_string(ms.count()));
    }));
    server_->add_method("/rt.Svc/ZeroCopy", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
      bool in_ring = uringrpc::loop::Shard::current()->buffers().contains(req.data());
      co_return Bytes(in_ring ? "view" : "copy");
    }));
    server_->add_method("/rt.Svc/StopFromHandler", uringrpc::unary([this](Bytes, ServerContext&) -> Task<Bytes> {
      server_->stop(2s);  // from a shard thread: starts the shutdown, returns at once
      stop_returned_in_handler_ = true;
      co_return Bytes("stopping");
    }));
    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
    channel_ = make_channel("127.0.0.1:" + std::to_string(port_));
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  std::unique_ptr<uringrpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  int port_ = 0;
  std::atomic<bool> offload_frame_gone_{false};
  std::atomic<bool> offload_fn_finished_{false};
  std::atomic<bool> offload_resumed_after_cancel_{false};
  std::atomic<bool> stop_returned_in_handler_{false};
};

TEST_F(HandlerRuntime, OffloadRunsOnThePoolAndResumesOnTheSameShard) {
  start();
  auto r = unary_call(channel_, "/rt.Svc/Offload", "x");
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  // "x|uringrpc/N|uringrpc-off/M|uringrpc/N"
  std::string s = r.responses[0];
  auto p1 = s.find('|'), p2 = s.find('|', p1 + 1), p3 = s.find('|', p2 + 1);
  std::string before = s.substr(p1 + 1, p2 - p1 - 1), pool = s.substr(p2 + 1, p3 - p2 - 1),
              after = s.substr(p3 + 1);
  EXPECT_EQ(before.rfind("uringrpc/", 0), 0u) << s;
  EXPECT_EQ(pool.rfind("uringrpc-off/", 0), 0u) << s;
  EXPECT_EQ(before, after) << s;
}

TEST_F(HandlerRuntime, ExceptionInOffloadedWorkEndsTheRpcWithUnknown) {
  start();
  auto r = unary_call(channel_, "/rt.Svc/OffloadThrows", "");
  EXPECT_EQ(r.code, grpc::StatusCode::UNKNOWN) << describe(r);
  EXPECT_NE(r.details.find("std::out_of_range: from the pool"), std::string::npos) << r.details;
}

TEST_F(HandlerRuntime, CancelledRpcDropsTheOffloadResultWithoutResumingTheHandler) {
  start();
  auto r = unary_call(channel_, "/rt.Svc/OffloadThenCancelled", "", 100ms);
  EXPECT_EQ(r.code, grpc::StatusCode::DEADLINE_EXCEEDED) << describe(r);
  for (int i = 0; i < 100 && !offload_frame_gone_; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(offload_frame_gone_) << "the cancelled handler's frame was not destroyed";
  for (int i = 0; i < 100 && !offload_fn_finished_; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(offload_fn_finished_);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(offload_resumed_after_cancel_) << "a destroyed frame was resumed";
  // The shard is still healthy.
  EXPECT_TRUE(unary_call(channel_, "/rt.Svc/Sleep", "1").ok());
}

TEST_F(HandlerRuntime, SleepForWaitsAtLeastTheDurationWithoutBlockingOtherCalls) {
  start(uringrpc::ServerOptions{.shards = 1});
  auto slow = uringrpc::testing::start_unary_call(channel_, "/rt.Svc/Sleep", "1000");
  // While the first handler sleeps on the only shard, another call is served: it finishes
  // while the sleeping one is still pending.
  auto quick = unary_call(channel_, "/rt.Svc/Sleep", "0");
  EXPECT_TRUE(quick.ok()) << describe(quick);
  EXPECT_NE(slow.wait_for(0ms), std::future_status::ready) << "the shard was blocked by a sleeping handler";
  auto r = slow.get();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_GE(std::stoi(r.responses.at(0)), 1000);
}

TEST_F(HandlerRuntime, SmallRequestReachesTheHandlerAsAViewOfTheReceiveBuffer) {
  start();
  auto r = unary_call(channel_, "/rt.Svc/ZeroCopy", std::string(100, 'a'));
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "view");
}

TEST_F(HandlerRuntime, RequestLargerThanAReceiveBufferIsAssembledIntoItsOwnStorage) {
  start();
  auto r = unary_call(channel_, "/rt.Svc/ZeroCopy", std::string(200 << 10, 'b'));
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "copy");
}

TEST_F(HandlerRuntime, StopCalledInsideAHandlerReturnsAndTheServerStops) {
  start();
  auto r = unary_call(channel_, "/rt.Svc/StopFromHandler", "");
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(stop_returned_in_handler_);
  std::thread waiter([this] { server_->wait(); });
  waiter.join();  // wait() returns once the shutdown the handler began has finished
  auto after = unary_call(make_channel("127.0.0.1:" + std::to_string(port_)), "/rt.Svc/Sleep", "0", 1s);
  EXPECT_FALSE(after.ok());
}

TEST(ServerLifecycle, DestroyingARunningServerStopsItAndFreesThePort) {
  int port = 0;
  {
    uringrpc::Server server;
    server.add_method("/rt.Svc/Echo", uringrpc::unary([](Bytes b, ServerContext&) -> Task<Bytes> { co_return b; }));
    port = server.add_insecure_port("127.0.0.1:0");
    server.start();
    auto r = unary_call(make_channel("127.0.0.1:" + std::to_string(port)), "/rt.Svc/Echo", "hi");
    EXPECT_TRUE(r.ok()) << describe(r);
  }
  uringrpc::Server again(uringrpc::ServerOptions{.listen = {.so_reuseport = false}});
  EXPECT_EQ(again.add_insecure_port("127.0.0.1:" + std::to_string(port)), port);
}

TEST(ServerLifecycle, UnixSocketPortServesTheRealClientAndNamesThePeer) {
  std::string path = "/tmp/uringrpc-e2e-" + std::to_string(getpid()) + ".sock";
  uringrpc::Server server;
  server.add_method("/rt.Svc/Peer", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
    co_return Bytes(std::string(ctx.peer()));
  }));
  EXPECT_EQ(server.add_insecure_port("unix:" + path), 0);
  server.start();
  auto r = unary_call(make_channel("unix:" + path), "/rt.Svc/Peer", "");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0).rfind("unix:", 0), 0u) << r.responses.at(0);
  server.stop();
}

TEST(ServerLifecycle, GracefulStopRefusesNewCallsAndLetsCallsInFlightFinish) {
  uringrpc::Server server;
  std::atomic<bool> started{false};
  server.add_method("/rt.Svc/Slow", uringrpc::unary([&](Bytes b, ServerContext&) -> Task<Bytes> {
    started = true;
    co_await uringrpc::sleep_for(800ms);
    co_return b;
  }));
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  auto channel = make_channel("127.0.0.1:" + std::to_string(port));
  auto in_flight = uringrpc::testing::start_unary_call(channel, "/rt.Svc/Slow", "first", 10s);
  for (int i = 0; i < 200 && !started; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(started);
  std::thread stopper([&] { server.stop(5s); });
  std::this_thread::sleep_for(100ms);  // the stop is under way
  auto refused = unary_call(channel, "/rt.Svc/Slow", "second", 2s);
  EXPECT_FALSE(refused.ok()) << describe(refused);
  auto r = in_flight.get();
  EXPECT_TRUE(r.ok()) << describe(r);
  stopper.join();
}

TEST(ServerLifecycle, MisuseThrowsUsageErrorOrInvalidArgument) {
  uringrpc::Server server;
  auto echo = uringrpc::unary([](Bytes b, ServerContext&) -> Task<Bytes> { co_return b; });
  EXPECT_THROW(server.add_method("no-slash", echo), std::invalid_argument);
  EXPECT_THROW(server.add_method("/only-service", echo), std::invalid_argument);
  server.add_method("/a.B/C", echo);
  EXPECT_THROW(server.add_method("/a.B/C", echo), std::invalid_argument);
  server.add_insecure_port("127.0.0.1:0");
  server.start();
  EXPECT_THROW(server.start(), uringrpc::UsageError);
  EXPECT_THROW(server.add_method("/a.B/D", echo), uringrpc::UsageError);
  EXPECT_THROW(server.add_insecure_port("127.0.0.1:0"), uringrpc::UsageError);
  server.stop();
  server.wait();  // returns at once after stop
}

}  // namespace
