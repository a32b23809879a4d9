// uringrpc::HealthService (grpc.health.v1.Health) called by the real gRPC C++ client through
// the stubs grpc_cpp_plugin generates: Check and Watch of known and unknown services,
// set_status from other threads reaching Watch streams on several shards, and the server's
// stop: NOT_SERVING seen by Check and Watch once it begins and before any GOAWAY, and Watch
// streams ending instead of holding the graceful stop for its grace period.
#include <pthread.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using uringrpc::Bytes;
using uringrpc::HealthService;
using uringrpc::ServerContext;
using uringrpc::Task;
using Serving = HealthCheckResponse::ServingStatus;

std::unique_ptr<grpc::ClientContext> context(std::chrono::seconds timeout = 5s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

struct CheckResult {
  grpc::StatusCode code;
  Serving status;
};

CheckResult check(Health::Stub& stub, const std::string& service) {
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  auto ctx = context();
  grpc::Status s = stub.Check(ctx.get(), req, &resp);
  return {s.error_code(), resp.status()};
}

// A Watch call read on its own thread; the test waits for what it has seen.
class WatchStream {
 public:
  WatchStream(Health::Stub& stub, const std::string& service) {
    ctx_.set_deadline(std::chrono::system_clock::now() + 30s);
    HealthCheckRequest req;
    req.set_service(service);
    reader_ = stub.Watch(&ctx_, req);
    thread_ = std::thread([this] {
      HealthCheckResponse resp;
      while (reader_->Read(&resp)) {
        std::lock_guard lock(mu_);
        seen_.push_back(resp.status());
        cv_.notify_all();
      }
      grpc::Status s = reader_->Finish();
      std::lock_guard lock(mu_);
      status_ = s;
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~WatchStream() {
    ctx_.TryCancel();
    thread_.join();
  }

  // Waits until the last status seen is `want`.
  bool wait_last(Serving want, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return !seen_.empty() && seen_.back() == want; });
  }
  bool wait_ended(std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return ended_; });
  }
  std::vector<Serving> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  grpc::Status status() {
    std::lock_guard lock(mu_);
    return status_;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Serving> seen_;
  grpc::Status status_;
  bool ended_ = false;
  std::thread thread_;
};

class HealthTest : public ::testing::Test {
 protected:
  void start(unsigned shards) {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = shards});
    server_->add_service(health_);
    // Which shard serves this connection: the shard thread's name, "uringrpc/N".
    server_->add_method("/test.Probe/Shard", uringrpc::unary([](Bytes, ServerContext&) -> Task<Bytes> {
                          char name[16] = {};
                          pthread_getname_np(pthread_self(), name, sizeof name);
                          co_return Bytes(std::string(name));
                        }));
    server_->add_method("/test.Probe/Slow", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                          co_await uringrpc::sleep_for(500ms);
                          co_return req;
                        }));
    for (auto& hook : hooks_) server_->on_stop_begin(hook);
    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  std::shared_ptr<grpc::Channel> channel() {
    return uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port_));
  }
  std::string shard_of(const std::shared_ptr<grpc::Channel>& ch) {
    auto r = uringrpc::testing::unary_call(ch, "/test.Probe/Shard", "");
    return r.ok() && !r.responses.empty() ? r.responses[0] : "?";
  }

  HealthService health_;
  std::vector<std::function<void()>> hooks_;  // registered after the health service's
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
};

TEST_F(HealthTest, CheckAnswersTheWholeServerAndEachServiceSetAndNotFoundForOthers) {
  start(1);
  auto stub = Health::NewStub(channel());
  CheckResult r = check(*stub, "");
  EXPECT_EQ(r.code, grpc::StatusCode::OK);
  EXPECT_EQ(r.status, HealthCheckResponse::SERVING);  // the whole server starts SERVING
  EXPECT_EQ(check(*stub, "svc.A").code, grpc::StatusCode::NOT_FOUND);

  health_.set_status("svc.A", HealthService::SERVING);
  r = check(*stub, "svc.A");
  EXPECT_EQ(r.code, grpc::StatusCode::OK);
  EXPECT_EQ(r.status, HealthCheckResponse::SERVING);
  health_.set_status("svc.A", HealthService::NOT_SERVING);
  EXPECT_EQ(check(*stub, "svc.A").status, HealthCheckResponse::NOT_SERVING);
  health_.set_status("", HealthService::NOT_SERVING);
  EXPECT_EQ(check(*stub, "").status, HealthCheckResponse::NOT_SERVING);
  health_.clear_status("svc.A");
  EXPECT_EQ(check(*stub, "svc.A").code, grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(check(*stub, "svc.a").code, grpc::StatusCode::NOT_FOUND);  // names are exact

  EXPECT_THROW(health_.set_status("svc.A", static_cast<HealthService::ServingStatus>(3)), std::invalid_argument);
  EXPECT_THROW(health_.set_status("svc.A", static_cast<HealthService::ServingStatus>(0)), std::invalid_argument);
}

TEST_F(HealthTest, HealthServiceServesOneServer) {
  start(1);
  uringrpc::Server other(uringrpc::ServerOptions{.shards = 1});
  EXPECT_THROW(other.add_service(health_), uringrpc::UsageError);
}

TEST_F(HealthTest, WatchOfAnUnknownServiceSendsServiceUnknownThenFollowsUpdates) {
  start(1);
  auto stub = Health::NewStub(channel());
  WatchStream watch(*stub, "svc.B");
  ASSERT_TRUE(watch.wait_last(HealthCheckResponse::SERVICE_UNKNOWN));
  std::thread([&] { health_.set_status("svc.B", HealthService::SERVING); }).join();
  ASSERT_TRUE(watch.wait_last(HealthCheckResponse::SERVING));
  health_.set_status("svc.B", HealthService::SERVING);  // no change: nothing sent
  health_.set_status("svc.other", HealthService::NOT_SERVING);  // another service: nothing sent
  health_.set_status("svc.B", HealthService::NOT_SERVING);
  ASSERT_TRUE(watch.wait_last(HealthCheckResponse::NOT_SERVING));
  health_.clear_status("svc.B");
  ASSERT_TRUE(watch.wait_last(HealthCheckResponse::SERVICE_UNKNOWN));
  EXPECT_EQ(watch.seen(), (std::vector<Serving>{HealthCheckResponse::SERVICE_UNKNOWN, HealthCheckResponse::SERVING,
                                                HealthCheckResponse::NOT_SERVING,
                                                HealthCheckResponse::SERVICE_UNKNOWN}));
}

TEST_F(HealthTest, WatchOfAKnownServiceSendsItsStatusAtOnce) {
  start(1);
  health_.set_status("svc.C", HealthService::NOT_SERVING);
  auto stub = Health::NewStub(channel());
  WatchStream watch(*stub, "svc.C");
  ASSERT_TRUE(watch.wait_last(HealthCheckResponse::NOT_SERVING));
  WatchStream whole(*stub, "");
  ASSERT_TRUE(whole.wait_last(HealthCheckResponse::SERVING));
}

TEST_F(HealthTest, StatusChangesFromOtherThreadsReachWatchStreamsOnSeveralShards) {
  start(4);
  // One connection per channel; SO_REUSEPORT spreads them over the shards by hash.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::set<std::string> shards;
  for (int i = 0; i < 32 && (shards.size() < 3 || channels.size() < 6); ++i) {
    channels.push_back(channel());
    shards.insert(shard_of(channels.back()));
  }
  ASSERT_GE(shards.size(), 2u) << "every connection landed on one shard";
  ASSERT_EQ(shards.count("?"), 0u);
  std::vector<std::unique_ptr<Health::Stub>> stubs;
  std::vector<std::unique_ptr<WatchStream>> watches;
  for (auto& ch : channels) {
    stubs.push_back(Health::NewStub(ch));
    watches.push_back(std::make_unique<WatchStream>(*stubs.back(), "svc.D"));
  }
  for (auto& w : watches) ASSERT_TRUE(w->wait_last(HealthCheckResponse::SERVICE_UNKNOWN));

  std::thread([&] { health_.set_status("svc.D", HealthService::SERVING); }).join();
  for (auto& w : watches) EXPECT_TRUE(w->wait_last(HealthCheckResponse::SERVING));
  std::thread([&] { health_.set_status("svc.D", HealthService::NOT_SERVING); }).join();
  for (auto& w : watches) EXPECT_TRUE(w->wait_last(HealthCheckResponse::NOT_SERVING));

  // A burst from two threads: each stream may skip states (coalescing) but never repeats
  // one, and ends on the last one set.
  std::thread a([&] {
    for (int i = 0; i < 500; ++i) health_.set_status("svc.D", i % 2 ? HealthService::NOT_SERVING : HealthService::SERVING);
  });
  std::thread b([&] {
    for (int i = 0; i < 500; ++i) health_.set_status("svc.D", i % 2 ? HealthService::SERVING : HealthService::NOT_SERVING);
  });
  a.join();
  b.join();
  health_.set_status("svc.D", HealthService::SERVING);
  for (auto& w : watches) {
    EXPECT_TRUE(w->wait_last(HealthCheckResponse::SERVING));
    auto seen = w->seen();
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_NE(seen[i], seen[i - 1]) << "at " << i;
  }
  // Check on every shard answers the same.
  for (auto& s : stubs) EXPECT_EQ(check(*s, "svc.D").status, HealthCheckResponse::SERVING);
}

TEST_F(HealthTest, StopTurnsEveryServiceNotServingBeforeTheGoawayAndWatchDoesNotHoldTheStop) {
  // This hook runs after the health service's, still before the server stops accepting and
  // before any GOAWAY: while it runs, the server serves calls as before.
  std::vector<Serving> hook_watch_seen;
  grpc::Status hook_watch_status;
  CheckResult hook_check{}, hook_check_named{}, hook_check_after_set{};
  bool open_watch_saw_not_serving = false;
  std::shared_ptr<grpc::Channel> ch_b;
  std::unique_ptr<WatchStream>* open_watch = nullptr;
  hooks_.push_back([&] {
    open_watch_saw_not_serving = (*open_watch)->wait_last(HealthCheckResponse::NOT_SERVING);
    auto stub = Health::NewStub(ch_b);
    hook_check = check(*stub, "");
    hook_check_named = check(*stub, "svc.E");
    health_.set_status("svc.E", HealthService::SERVING);  // ignored once the stop began
    hook_check_after_set = check(*stub, "svc.E");
    WatchStream late(*stub, "svc.E");
    late.wait_ended();
    hook_watch_seen = late.seen();
    hook_watch_status = late.status();
  });
  start(2);
  health_.set_status("svc.E", HealthService::SERVING);
  auto ch_a = channel();
  ch_b = channel();
  auto stub_a = Health::NewStub(ch_a);
  auto watch = std::make_unique<WatchStream>(*stub_a, "");
  open_watch = &watch;
  ASSERT_TRUE(watch->wait_last(HealthCheckResponse::SERVING));
  ASSERT_EQ(check(*Health::NewStub(ch_b), "svc.E").status, HealthCheckResponse::SERVING);
  // Another call in flight drains as usual.
  auto slow = uringrpc::testing::start_unary_call(ch_b, "/test.Probe/Slow", "slow", 10s);
  std::this_thread::sleep_for(100ms);

  auto t0 = std::chrono::steady_clock::now();
  server_->stop(30s);
  auto took = std::chrono::steady_clock::now() - t0;

  EXPECT_TRUE(open_watch_saw_not_serving) << "an open Watch did not get NOT_SERVING before the GOAWAY";
  EXPECT_EQ(hook_check.code, grpc::StatusCode::OK);
  EXPECT_EQ(hook_check.status, HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(hook_check_named.status, HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(hook_check_after_set.status, HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(hook_watch_seen, std::vector<Serving>{HealthCheckResponse::NOT_SERVING});
  EXPECT_EQ(hook_watch_status.error_code(), grpc::StatusCode::UNAVAILABLE) << hook_watch_status.error_message();

  // The open Watch got NOT_SERVING and ended; the stop did not wait out its 30 s grace.
  ASSERT_TRUE(watch->wait_ended());
  EXPECT_EQ(watch->seen(), (std::vector<Serving>{HealthCheckResponse::SERVING, HealthCheckResponse::NOT_SERVING}));
  EXPECT_EQ(watch->status().error_code(), grpc::StatusCode::UNAVAILABLE) << watch->status().error_message();
  EXPECT_LT(took, 15s) << "the stop waited for the Watch stream";
  auto r = slow.get();
  EXPECT_TRUE(r.ok()) << uringrpc::testing::describe(r);
}

}  // namespace
