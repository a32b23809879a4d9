// End-to-end deadline behaviour against the real gRPC client: a handler still running at
// the deadline is cancelled (its frame destroyed, not left sleeping), the client sees
// DEADLINE_EXCEEDED on time, and ServerContext::deadline() reflects the grpc-timeout header.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

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

// Sets a flag when the handler's frame is destroyed, and records what the context said
// about cancellation at that moment (the context outlives the frame).
struct DestroyedFlag {
  std::atomic<bool>* destroyed;
  std::atomic<bool>* cancelled_seen;
  ServerContext* ctx;
  ~DestroyedFlag() {
    if (cancelled_seen) cancelled_seen->store(ctx->cancelled());
    destroyed->store(true);
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

// A unary call whose ClientContext has no deadline (unary_call always sets one). The wait
// is still bounded: past `limit` the call is cancelled and the test fails.
CallResult unary_without_deadline(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                                  const std::string& request, std::chrono::milliseconds limit) {
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  grpc::GenericStub stub(channel);
  grpc::Slice slice(request);
  CallResult result;
  {
    auto reader = stub.PrepareUnaryCall(&ctx, method, grpc::ByteBuffer(&slice, 1), &cq);
    reader->StartCall();
    grpc::ByteBuffer response;
    grpc::Status status;
    static char tag;
    reader->Finish(&response, &status, &tag);
    void* got = nullptr;
    bool ok = false;
    if (cq.AsyncNext(&got, &ok, std::chrono::system_clock::now() + limit) !=
        grpc::CompletionQueue::GOT_EVENT) {
      ADD_FAILURE() << "call without deadline did not finish within " << limit.count() << " ms";
      ctx.TryCancel();
      cq.Next(&got, &ok);
    }
    result.code = status.error_code();
    result.details = status.error_message();
    if (status.ok()) {
      std::vector<grpc::Slice> slices;
      (void)response.Dump(&slices);
      std::string out;
      for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
      result.responses.push_back(out);
    }
  }
  cq.Shutdown();
  void* t;
  bool ok;
  while (cq.Next(&t, &ok)) {
  }
  return result;
}

// Far longer than any bound below, so "returned before the sleep ended" is unambiguous
// even on a loaded machine (the client's own deadline timer has been seen 4 s late at
// load average 10 on 2 CPUs).
constexpr auto kHandlerSleep = 20s;
constexpr auto kClientLatencyBound = 6s;

class Deadline : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});

    // Sleeps far past any deadline the tests use; must be cut short by cancellation.
    server_->add_method("/e2e.Deadline/SleepLong",
                        uringrpc::unary([this](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          DestroyedFlag guard{&destroyed_, &cancelled_seen_, &ctx};
                          entered_.store(true);
                          co_await uringrpc::sleep_for(kHandlerSleep);
                          sleep_completed_.store(true);
                          co_return req;
                        }));

    // Server streaming: one message (so response headers are out), then a long sleep: the
    // deadline must then end the call with trailers, not a Trailers-Only response.
    server_->add_method("/e2e.Deadline/OneThenSleep",
                        uringrpc::server_streaming([this](Bytes req, ServerContext& ctx) -> Task<void> {
                          DestroyedFlag guard{&destroyed_, &cancelled_seen_, &ctx};
                          co_await ctx.write(req);
                          entered_.store(true);
                          co_await uringrpc::sleep_for(kHandlerSleep);
                          sleep_completed_.store(true);
                        }));

    // Bidi: counts requests and waits on a read that never comes.
    server_->add_method("/e2e.Deadline/WaitRead",
                        uringrpc::bidi_streaming([this](uringrpc::Reader<Bytes>& reader,
                                                        ServerContext& ctx) -> Task<void> {
                          DestroyedFlag guard{&destroyed_, &cancelled_seen_, &ctx};
                          entered_.store(true);
                          while (auto m = co_await reader.next()) reads_.fetch_add(1);
                          sleep_completed_.store(true);  // "read loop ended normally"
                        }));

    // Reports how far away the deadline is, in milliseconds, or "none".
    server_->add_method("/e2e.Deadline/Remaining",
                        uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          auto d = ctx.deadline();
                          if (!d) co_return Bytes("none");
                          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d - Clock::now());
                          co_return Bytes(std::to_string(ms.count()));
                        }));

    // Finishes well inside its deadline.
    server_->add_method("/e2e.Deadline/SleepShort",
                        uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                          co_await uringrpc::sleep_for(20ms);
                          co_return req;
                        }));

    port_ = server_->add_insecure_port("127.0.0.1:0");
    ASSERT_GT(port_, 0);
    server_->start();
    channel_ = make_channel("127.0.0.1:" + std::to_string(port_));
  }

  void TearDown() override {
    channel_.reset();
    if (server_) server_->stop();
  }

  std::atomic<bool> entered_{false};
  std::atomic<bool> destroyed_{false};
  std::atomic<bool> cancelled_seen_{false};
  std::atomic<bool> sleep_completed_{false};
  std::atomic<int> reads_{0};
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(Deadline, ExpiredDeadlineGivesDeadlineExceededAndCancelsHandler) {
  auto start = Clock::now();
  CallResult r = unary_call(channel_, "/e2e.Deadline/SleepLong", "hello", 200ms);
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.code, grpc::StatusCode::DEADLINE_EXCEEDED) << describe(r);
  EXPECT_LT(elapsed, kClientLatencyBound) << "DEADLINE_EXCEEDED must come at the 200 ms deadline, not after the sleep";
  EXPECT_TRUE(entered_.load());
  // The handler's frame is destroyed (RAII guard ran) long before the sleep would end.
  EXPECT_TRUE(wait_until([&] { return destroyed_.load(); }, 1500ms))
      << "the handler still exists after the deadline passed";
  EXPECT_FALSE(sleep_completed_.load()) << "the handler ran past its sleep instead of being cancelled";
  EXPECT_TRUE(cancelled_seen_.load()) << "ServerContext::cancelled() was false while the frame was destroyed";
  EXPECT_LT(Clock::now() - start, kClientLatencyBound + 1500ms);
}

TEST_F(Deadline, DeadlineAfterFirstResponseEndsStreamAndCancelsHandler) {
  auto start = Clock::now();
  StreamingCall call(channel_, "/e2e.Deadline/OneThenSleep", 300ms);
  ASSERT_TRUE(call.write_last("first"));
  auto first = call.read();
  ASSERT_TRUE(first.has_value()) << describe(call.finish());
  EXPECT_EQ(*first, "first");
  EXPECT_FALSE(call.read().has_value());
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::DEADLINE_EXCEEDED) << describe(r);
  EXPECT_LT(Clock::now() - start, kClientLatencyBound);
  EXPECT_TRUE(wait_until([&] { return destroyed_.load(); }, 1500ms));
  EXPECT_FALSE(sleep_completed_.load());
}

TEST_F(Deadline, DeadlineWhileHandlerWaitsOnReadCancelsHandler) {
  auto start = Clock::now();
  StreamingCall call(channel_, "/e2e.Deadline/WaitRead", 250ms);
  ASSERT_TRUE(call.write("ping"));
  ASSERT_TRUE(wait_until([&] { return reads_.load() == 1; }, 200ms)) << "the handler never got the request";
  // No more writes and no half-close: the handler waits on reader.next() until the deadline.
  EXPECT_FALSE(call.read().has_value());
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::DEADLINE_EXCEEDED) << describe(r);
  EXPECT_LT(Clock::now() - start, kClientLatencyBound);
  EXPECT_TRUE(wait_until([&] { return destroyed_.load(); }, 1500ms));
  EXPECT_FALSE(sleep_completed_.load()) << "the read loop ended normally instead of being cancelled";
  EXPECT_TRUE(cancelled_seen_.load());
}

TEST_F(Deadline, ServerContextDeadlineIsSetWhenClientSetsOne) {
  CallResult r = unary_call(channel_, "/e2e.Deadline/Remaining", "", 10000ms);
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  ASSERT_NE(r.responses[0], "none") << "ctx.deadline() is empty although the client set a 10 s deadline";
  long remaining = std::stol(r.responses[0]);
  EXPECT_GT(remaining, 5000) << "remaining " << remaining << " ms of a 10000 ms deadline";
  // The client rounds grpc-timeout up to a coarser unit (10099 ms has been seen for 10 s).
  EXPECT_LE(remaining, 10300) << "remaining " << remaining << " ms of a 10000 ms deadline";
}

TEST_F(Deadline, ServerContextDeadlineIsEmptyWithoutClientDeadline) {
  CallResult r = unary_without_deadline(channel_, "/e2e.Deadline/Remaining", "", 5s);
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], "none");
}

TEST_F(Deadline, CallFinishingBeforeDeadlineIsOk) {
  CallResult r = unary_call(channel_, "/e2e.Deadline/SleepShort", "quick", 5s);
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], "quick");
}

TEST_F(Deadline, ServerServesNewCallsAfterDeadlineCancellations) {
  for (int i = 0; i < 5; ++i) {
    CallResult r = unary_call(channel_, "/e2e.Deadline/SleepLong", "x", 50ms);
    EXPECT_EQ(r.code, grpc::StatusCode::DEADLINE_EXCEEDED) << describe(r);
  }
  CallResult ok = unary_call(channel_, "/e2e.Deadline/SleepShort", "still-alive", 5s);
  ASSERT_TRUE(ok.ok()) << describe(ok);
  EXPECT_EQ(ok.responses.at(0), "still-alive");
}

}  // namespace
