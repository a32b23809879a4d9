// End-to-end concurrency with the real gRPC client: many connections spread over two
// shards, many concurrent calls per connection, more streams than
// SETTINGS_MAX_CONCURRENT_STREAMS on one connection (the client queues), and the
// server-wide calls.max_concurrent cap.
#include <pthread.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::status_code_name;

// A channel with its own connection: the distinct argument keeps gRPC from sharing one
// subchannel between channels, the local pool keeps other tests' connections out.
std::shared_ptr<grpc::Channel> make_distinct_channel(const std::string& target, int id) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("uringrpc.test.channel", id);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

struct BatchOutcome {
  int ok = 0;
  std::map<std::string, int> codes;  // status name → count
  std::vector<std::string> problems;  // first few failures, for the assertion message
  std::string summary() const {
    std::string s = "ok=" + std::to_string(ok);
    for (auto& [name, n] : codes) s += " " + name + "=" + std::to_string(n);
    for (auto& p : problems) s += "\n  " + p;
    return s;
  }
};

// Issues every request at once as unary calls on `channel` (all in flight together) and
// waits for all of them, bounded by `timeout` plus slack. Each response must equal its
// request.
BatchOutcome concurrent_unary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                              const std::vector<std::string>& requests, std::chrono::milliseconds timeout) {
  struct One {
    grpc::ClientContext ctx;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  };
  grpc::CompletionQueue cq;
  grpc::GenericStub stub(channel);
  auto deadline = std::chrono::system_clock::now() + timeout;
  std::vector<std::unique_ptr<One>> calls;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto c = std::make_unique<One>();
    c->ctx.set_deadline(deadline);
    grpc::Slice slice(requests[i]);
    c->reader = stub.PrepareUnaryCall(&c->ctx, method, grpc::ByteBuffer(&slice, 1), &cq);
    c->reader->StartCall();
    c->reader->Finish(&c->response, &c->status, reinterpret_cast<void*>(static_cast<uintptr_t>(i + 1)));
    calls.push_back(std::move(c));
  }
  BatchOutcome out;
  size_t pending = calls.size();
  bool cancelled = false;
  while (pending > 0) {
    void* tag = nullptr;
    bool ok = false;
    auto limit = deadline + (cancelled ? 30s : 5s);
    if (cq.AsyncNext(&tag, &ok, limit) != grpc::CompletionQueue::GOT_EVENT) {
      if (cancelled) {
        ADD_FAILURE() << "gRPC calls still pending 30 s after TryCancel";
        std::abort();
      }
      ADD_FAILURE() << pending << " calls did not finish within their deadline + 5 s; cancelling";
      for (auto& c : calls) c->ctx.TryCancel();
      cancelled = true;
      continue;
    }
    --pending;
    size_t i = reinterpret_cast<uintptr_t>(tag) - 1;
    One& c = *calls[i];
    out.codes[status_code_name(c.status.error_code())]++;
    if (!c.status.ok()) {
      if (out.problems.size() < 5) {
        out.problems.push_back("call #" + std::to_string(i) + ": " + status_code_name(c.status.error_code()) +
                               " \"" + c.status.error_message() + "\"");
      }
      continue;
    }
    std::vector<grpc::Slice> slices;
    (void)c.response.Dump(&slices);
    std::string got;
    for (auto& s : slices) got.append(reinterpret_cast<const char*>(s.begin()), s.size());
    if (got == requests[i]) {
      ++out.ok;
    } else if (out.problems.size() < 5) {
      out.problems.push_back("call #" + std::to_string(i) + ": response \"" + got.substr(0, 64) +
                             "\" for request \"" + requests[i].substr(0, 64) + "\"");
    }
  }
  calls.clear();
  cq.Shutdown();
  void* t;
  bool ok;
  while (cq.Next(&t, &ok)) {
  }
  return out;
}

class Concurrency : public ::testing::Test {
 protected:
  void start(uringrpc::ServerOptions opts) {
    server_ = std::make_unique<uringrpc::Server>(opts);
    // Echo that records the serving thread and how many calls run at once.
    server_->add_method("/e2e.Concurrency/Echo",
                        uringrpc::unary([this](Bytes req, ServerContext&) -> Task<Bytes> {
                          char name[16] = {};
                          pthread_getname_np(pthread_self(), name, sizeof name);
                          {
                            std::lock_guard lock(mu_);
                            threads_[name]++;
                          }
                          struct InFlight {
                            Concurrency* t;
                            explicit InFlight(Concurrency* self) : t(self) {
                              int now = t->in_flight_.fetch_add(1) + 1;
                              int seen = t->max_in_flight_.load();
                              while (now > seen && !t->max_in_flight_.compare_exchange_weak(seen, now)) {
                              }
                            }
                            ~InFlight() { t->in_flight_.fetch_sub(1); }
                          } in_flight(this);
                          co_await uringrpc::sleep_for(std::chrono::milliseconds(handler_sleep_ms_.load()));
                          co_return req;
                        }));
    port_ = server_->add_insecure_port("127.0.0.1:0");
    ASSERT_GT(port_, 0);
    server_->start();
    target_ = "127.0.0.1:" + std::to_string(port_);
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  std::map<std::string, int> thread_counts() {
    std::lock_guard lock(mu_);
    return threads_;
  }

  std::mutex mu_;
  std::map<std::string, int> threads_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<int> handler_sleep_ms_{10};
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::string target_;
};

TEST_F(Concurrency, EightConnectionsOfFiftyConcurrentCallsOnTwoShardsAllSucceedOnBothShards) {
  start(uringrpc::ServerOptions{.shards = 2});
  ASSERT_EQ(server_->shard_count(), 2u);
  constexpr int kChannels = 8;
  constexpr int kCallsPerChannel = 50;
  constexpr int kMaxRounds = 5;  // the kernel's reuseport hash decides the shard
  int rounds = 0;
  for (; rounds < kMaxRounds; ++rounds) {
    std::vector<std::future<BatchOutcome>> batches;
    for (int c = 0; c < kChannels; ++c) {
      int id = rounds * kChannels + c;
      batches.push_back(std::async(std::launch::async, [this, id] {
        auto channel = make_distinct_channel(target_, id);
        std::vector<std::string> requests;
        for (int k = 0; k < kCallsPerChannel; ++k) {
          requests.push_back("channel " + std::to_string(id) + " call " + std::to_string(k) + " " +
                             std::string(static_cast<size_t>(k * 37 % 500), static_cast<char>('a' + k % 26)));
        }
        return concurrent_unary(channel, "/e2e.Concurrency/Echo", requests, 10s);
      }));
    }
    for (int c = 0; c < kChannels; ++c) {
      BatchOutcome o = batches[c].get();
      EXPECT_EQ(o.ok, kCallsPerChannel) << "round " << rounds << " channel " << c << ": " << o.summary();
    }
    auto threads = thread_counts();
    if (threads.count("uringrpc/0") && threads.count("uringrpc/1")) break;
  }
  auto threads = thread_counts();
  std::string seen;
  int total = 0;
  for (auto& [name, n] : threads) {
    seen += name + "=" + std::to_string(n) + " ";
    total += n;
  }
  EXPECT_EQ(threads.size(), 2u) << "handlers ran on: " << seen;
  EXPECT_TRUE(threads.count("uringrpc/0")) << "shard 0 served nothing in " << rounds + 1 << " rounds: " << seen;
  EXPECT_TRUE(threads.count("uringrpc/1")) << "shard 1 served nothing in " << rounds + 1 << " rounds: " << seen;
  EXPECT_EQ(total % (kChannels * kCallsPerChannel), 0) << seen;
}

TEST_F(Concurrency, TwoHundredStreamsOnOneConnectionWithLimitOfHundredAllComplete) {
  uringrpc::ServerOptions opts;
  opts.shards = 1;
  opts.http2.max_concurrent_streams = 100;
  handler_sleep_ms_ = 100;  // long enough that the client must queue the second hundred
  start(opts);
  auto channel = make_distinct_channel(target_, 1000);
  std::vector<std::string> requests;
  for (int k = 0; k < 200; ++k) requests.push_back("stream " + std::to_string(k));
  BatchOutcome o = concurrent_unary(channel, "/e2e.Concurrency/Echo", requests, 15s);
  EXPECT_EQ(o.ok, 200) << o.summary();
  EXPECT_LE(max_in_flight_.load(), 100) << "more streams ran at once than SETTINGS_MAX_CONCURRENT_STREAMS";
  EXPECT_GE(max_in_flight_.load(), 50) << "the calls did not actually run concurrently";
  EXPECT_EQ(in_flight_.load(), 0);
}

TEST_F(Concurrency, ServerWideRpcCapRejectsTheExcessWithResourceExhausted) {
  uringrpc::ServerOptions opts;
  opts.shards = 2;
  opts.calls.max_concurrent = 5;
  handler_sleep_ms_ = 500;  // the first five are still running when the rest arrive
  start(opts);
  auto channel = make_distinct_channel(target_, 2000);
  std::vector<std::string> requests;
  for (int k = 0; k < 10; ++k) requests.push_back("capped " + std::to_string(k));
  BatchOutcome o = concurrent_unary(channel, "/e2e.Concurrency/Echo", requests, 10s);
  EXPECT_EQ(o.ok, 5) << o.summary();
  EXPECT_EQ(o.codes["RESOURCE_EXHAUSTED"], 5) << o.summary();
  EXPECT_LE(max_in_flight_.load(), 5);
  // The slots come back when the calls end.
  handler_sleep_ms_ = 1;
  BatchOutcome again = concurrent_unary(channel, "/e2e.Concurrency/Echo", {"a", "b", "c", "d", "e"}, 10s);
  EXPECT_EQ(again.ok, 5) << again.summary();
}

}  // namespace
