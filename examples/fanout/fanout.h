// Fan-out: one publisher (any thread) broadcasts to many server-streaming subscribers spread
// over every shard. Each subscriber's handler owns a bounded uringrpc::Channel bound to its
// shard; the publisher sends each message to every channel without blocking. A full channel
// is a slow subscriber, and the application's policy applies:
//   SlowPolicy::kDropOldest  the oldest queued message makes room: the subscriber skips
//                            ahead and stays subscribed (its messages stay in order)
//   SlowPolicy::kDisconnect  the channel is closed: the subscriber gets what was queued,
//                            then RESOURCE_EXHAUSTED
// Used by fanout_server.cc, tests/wake/fanout_test.cc and perf/fanout_bench.cc.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "helloworld.uringrpc.pb.h"

namespace example {

enum class SlowPolicy { kDropOldest, kDisconnect };

// One message, shared by every subscriber's queue (published once, never copied).
using Message = std::shared_ptr<const std::string>;

class Hub {
 public:
  Hub(size_t queue_capacity, SlowPolicy policy) : capacity_(queue_capacity), policy_(policy) {}

  // Any thread. Queues message for every subscriber; returns how many took it without
  // the policy applying (the others were slow).
  size_t publish(Message message);
  // Any thread. Ends every subscription: each gets what is queued, then OK.
  void close_all();

  size_t subscribers() const;
  // Subscribers by shard index (as many entries as shards seen so far).
  std::vector<size_t> subscribers_by_shard() const;
  uint64_t disconnected() const noexcept { return disconnected_.load(); }
  // Messages dropped by kDropOldest, over every subscriber so far.
  uint64_t dropped() const;

  // One subscriber: made by its handler, on its shard.
  struct Subscription {
    explicit Subscription(size_t capacity) : channel(capacity) {}
    uringrpc::Channel<Message> channel;
    unsigned shard = 0;
    size_t slot = 0;  // index in Hub::subs_, under Hub::mu_
    bool overflowed = false;  // set before the channel is closed: read after receive() ends
  };
  std::shared_ptr<Subscription> subscribe();
  void unsubscribe(const std::shared_ptr<Subscription>& sub);

 private:
  const size_t capacity_;
  const SlowPolicy policy_;
  mutable std::mutex mu_;  // the subscriber list: subscribe, unsubscribe, publish
  std::vector<std::shared_ptr<Subscription>> subs_;
  uint64_t dropped_gone_ = 0;  // by subscribers that have left
  std::atomic<uint64_t> disconnected_{0};
};

// helloworld.Greeter/SayHelloStream as a subscription: each published message is one
// HelloReply whose `message` is the published text.
class FanoutService : public helloworld::GreeterService {
 public:
  explicit FanoutService(Hub& hub) : hub_(hub) {}
  uringrpc::Stream<helloworld::HelloReply> SayHelloStream(helloworld::HelloRequest request,
                                                          uringrpc::ServerContext& ctx) override;

 private:
  Hub& hub_;
};

}  // namespace example
