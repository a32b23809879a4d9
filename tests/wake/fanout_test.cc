// examples/fanout end to end: real gRPC C++ clients subscribe (helloworld SayHelloStream)
// to a uringrpc server on two shards; a publisher thread of the test broadcasts through the
// Hub. Every subscriber gets every message in order; a subscriber that never reads gets the
// application's slow-subscriber policy (disconnect with RESOURCE_EXHAUSTED, or drop-oldest)
// while the others keep receiving everything.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../../examples/fanout/fanout.h"
#include "../common/grpc_test_client.h"
#include "helloworld.grpc.pb.h"

namespace {

using namespace std::chrono_literals;
using example::Hub;
using example::SlowPolicy;

template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 20s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// One subscription through the real client; reads on its own thread unless told to stall.
class Subscriber {
 public:
  Subscriber(helloworld::Greeter::Stub& stub, bool reading) : reading_(reading) {
    ctx_.set_deadline(std::chrono::system_clock::now() + 120s);
    helloworld::HelloRequest req;
    reader_ = stub.SayHelloStream(&ctx_, req);
    if (reading_) thread_ = std::thread([this] { read_all(); });
  }
  ~Subscriber() {
    if (!reading_) {  // a stalled one the test never released (it failed): end the call
      ctx_.TryCancel();
      start_reading();
    }
    if (thread_.joinable()) thread_.join();
  }
  // For a stalled subscriber: starts reading now.
  void start_reading() {
    reading_ = true;
    thread_ = std::thread([this] { read_all(); });
  }
  void join() { thread_.join(); }

  std::atomic<uint64_t> received{0};
  std::vector<uint64_t> seqs;  // read after join()
  grpc::Status status;

 private:
  void read_all() {
    helloworld::HelloReply reply;
    while (reader_->Read(&reply)) {
      seqs.push_back(std::strtoull(reply.message().c_str() + 2, nullptr, 10));  // "m <n> ..."
      received++;
    }
    status = reader_->Finish();
  }
  bool reading_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<helloworld::HelloReply>> reader_;
  std::thread thread_;
};

class Fanout : public ::testing::Test {
 protected:
  void start(size_t queue, SlowPolicy policy) {
    hub_ = std::make_unique<Hub>(queue, policy);
    service_ = std::make_unique<example::FanoutService>(*hub_);
    // A small write watermark: a stalled client backs its handler up into its channel soon.
    server_ = std::make_unique<uringrpc::Server>(
        uringrpc::ServerOptions{.shards = 2, .calls = {.write_watermark_bytes = 16u << 10}});
    server_->add_service(*service_);
    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
  }
  void TearDown() override {
    if (hub_) hub_->close_all();
    subs_.clear();  // joins the readers
    if (server_) server_->stop(2s);
  }
  // Opens connections (each channel its own) until subscribers sit on both shards, then
  // spreads `n` subscribers over them.
  void subscribe(size_t n, bool reading = true) {
    while (stubs_.size() < 32) {
      auto by_shard = hub_->subscribers_by_shard();
      if (stubs_.size() >= 2 && by_shard.size() == 2 && by_shard[0] > 0 && by_shard[1] > 0) break;
      stubs_.push_back(helloworld::Greeter::NewStub(uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port_))));
      add(*stubs_.back(), reading);
      if (--n == 0) return;
    }
    for (size_t i = 0; i < n; ++i) add(*stubs_[i % stubs_.size()], reading);
  }
  Subscriber& add(helloworld::Greeter::Stub& stub, bool reading) {
    size_t before = hub_->subscribers();
    subs_.push_back(std::make_unique<Subscriber>(stub, reading));
    EXPECT_TRUE(eventually([&] { return hub_->subscribers() == before + 1; })) << "subscriber " << before;
    return *subs_.back();
  }
  void publish(uint64_t seq, size_t pad = 0) {
    hub_->publish(std::make_shared<const std::string>("m " + std::to_string(seq) + " " + std::string(pad, 'x')));
  }
  // Waits until every reading subscriber has received `n` messages.
  bool caught_up(uint64_t n, const Subscriber* except = nullptr) {
    return eventually([&] {
      for (auto& s : subs_) {
        if (s.get() != except && s->received < n) return false;
      }
      return true;
    });
  }
  static void expect_all_in_order(Subscriber& s, uint64_t n) {
    ASSERT_EQ(s.seqs.size(), n);
    for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(s.seqs[i], i) << "message " << i;
  }

  int port_ = 0;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<example::FanoutService> service_;
  std::unique_ptr<uringrpc::Server> server_;
  std::vector<std::unique_ptr<helloworld::Greeter::Stub>> stubs_;
  std::vector<std::unique_ptr<Subscriber>> subs_;
};

TEST_F(Fanout, TwoHundredSubscribersOnTwoShardsReceiveEveryMessageInOrder) {
  start(64, SlowPolicy::kDisconnect);  // a lost message would show as RESOURCE_EXHAUSTED
  subscribe(200);
  auto by_shard = hub_->subscribers_by_shard();
  ASSERT_EQ(by_shard.size(), 2u);
  EXPECT_GT(by_shard[0], 0u);
  EXPECT_GT(by_shard[1], 0u);
  constexpr uint64_t kMessages = 300;
  // From one publisher thread, in bursts of 32 (half a queue), each once every subscriber
  // has the previous burst: the pace of the slowest, as a real publisher's would be.
  std::thread publisher([&] {
    for (uint64_t i = 0; i < kMessages; ++i) {
      if (i % 32 == 0 && !caught_up(i)) return;
      publish(i);
    }
  });
  publisher.join();
  ASSERT_TRUE(caught_up(kMessages));
  hub_->close_all();
  for (auto& s : subs_) {
    s->join();
    EXPECT_TRUE(s->status.ok()) << s->status.error_code() << " " << s->status.error_message();
    expect_all_in_order(*s, kMessages);
  }
  EXPECT_EQ(hub_->disconnected(), 0u);
  EXPECT_TRUE(eventually([&] { return hub_->subscribers() == 0; })) << "every handler left the hub";
}

// Publishes 8 KiB messages in bursts while the readers keep up, until the stalled
// subscriber's queue overflows (its client window, the write watermark and its channel
// full), then 40 more. Returns how many were published.
uint64_t publish_until(Hub& hub, const std::function<void(uint64_t)>& publish,
                       const std::function<bool(uint64_t)>& caught_up, const std::function<bool()>& applied) {
  uint64_t n = 0;
  for (; n < 20000 && !applied(); ++n) {
    if (n % 8 == 0 && !caught_up(n)) return n;
    publish(n);
  }
  for (uint64_t end = n + 40; n < end; ++n) {
    if (n % 8 == 0 && !caught_up(n)) return n;
    publish(n);
  }
  (void)hub;
  return n;
}

TEST_F(Fanout, StalledSubscriberIsDisconnectedWithResourceExhaustedWhileOthersReceiveAll) {
  start(16, SlowPolicy::kDisconnect);
  subscribe(10);
  Subscriber& stalled = add(*stubs_[0], /*reading=*/false);
  uint64_t n = publish_until(
      *hub_, [&](uint64_t i) { publish(i, 8192); }, [&](uint64_t i) { return caught_up(i, &stalled); },
      [&] { return hub_->disconnected() > 0; });
  ASSERT_EQ(hub_->disconnected(), 1u) << "after " << n << " messages";
  ASSERT_TRUE(caught_up(n, &stalled));
  hub_->close_all();
  for (auto& s : subs_) {
    if (s.get() == &stalled) continue;
    s->join();
    EXPECT_TRUE(s->status.ok()) << s->status.error_message();
    expect_all_in_order(*s, n);
  }
  stalled.start_reading();
  stalled.join();
  EXPECT_EQ(stalled.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << stalled.status.error_message();
  // What it got before the cut is a prefix of the stream, in order.
  ASSERT_LT(stalled.seqs.size(), n - 40);
  for (uint64_t i = 0; i < stalled.seqs.size(); ++i) ASSERT_EQ(stalled.seqs[i], i);
  std::printf("disconnect: %llu messages published, the stalled subscriber got %zu before RESOURCE_EXHAUSTED\n",
              static_cast<unsigned long long>(n), stalled.seqs.size());
}

TEST_F(Fanout, StalledSubscriberUnderDropOldestSkipsAheadAndGetsTheNewest) {
  start(16, SlowPolicy::kDropOldest);
  subscribe(10);
  Subscriber& stalled = add(*stubs_[0], /*reading=*/false);
  uint64_t n = publish_until(
      *hub_, [&](uint64_t i) { publish(i, 8192); }, [&](uint64_t i) { return caught_up(i, &stalled); },
      [&] { return hub_->dropped() > 0; });
  ASSERT_GT(hub_->dropped(), 0u) << "after " << n << " messages";
  ASSERT_TRUE(caught_up(n, &stalled));
  hub_->close_all();
  for (auto& s : subs_) {
    if (s.get() == &stalled) continue;
    s->join();
    EXPECT_TRUE(s->status.ok()) << s->status.error_message();
    expect_all_in_order(*s, n);
  }
  stalled.start_reading();
  stalled.join();
  EXPECT_TRUE(stalled.status.ok()) << stalled.status.error_message();
  ASSERT_FALSE(stalled.seqs.empty());
  EXPECT_LT(stalled.seqs.size(), n) << "some were dropped";
  for (size_t i = 1; i < stalled.seqs.size(); ++i) ASSERT_LT(stalled.seqs[i - 1], stalled.seqs[i]) << "in order";
  EXPECT_EQ(stalled.seqs.back(), n - 1) << "the newest survive";
  EXPECT_EQ(stalled.seqs.size() + hub_->dropped(), n) << "each message delivered or counted dropped";
}

}  // namespace
