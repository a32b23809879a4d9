// Hub and FanoutService of fanout.h: the publisher's side (publish under the list's lock,
// never waiting for a subscriber) and the subscriber's handler (its channel, on its shard).
#include "fanout.h"

namespace example {

size_t Hub::publish(Message message) {
  size_t taken = 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& sub : subs_) {
    if (policy_ == SlowPolicy::kDropOldest) {
      size_t before = sub->channel.dropped();
      if (sub->channel.send_dropping_oldest(message) && sub->channel.dropped() == before) ++taken;
    } else if (sub->channel.try_send(message)) {
      ++taken;
    } else if (!sub->overflowed && !sub->channel.closed()) {
      // Full: disconnect. `overflowed` is written before close(), whose wake-up orders it
      // before the handler's receive() returns nullopt.
      sub->overflowed = true;
      sub->channel.close();
      disconnected_.fetch_add(1);
    }
  }
  return taken;
}

void Hub::close_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& sub : subs_) sub->channel.close();
}

size_t Hub::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subs_.size();
}

std::vector<size_t> Hub::subscribers_by_shard() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<size_t> n;
  for (auto& sub : subs_) {
    if (sub->shard >= n.size()) n.resize(sub->shard + 1);
    ++n[sub->shard];
  }
  return n;
}

uint64_t Hub::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = dropped_gone_;
  for (auto& sub : subs_) n += sub->channel.dropped();
  return n;
}

std::shared_ptr<Hub::Subscription> Hub::subscribe() {
  auto sub = std::make_shared<Subscription>(capacity_);  // its channel is bound to this shard
  sub->shard = uringrpc::this_shard().index();
  std::lock_guard<std::mutex> lock(mu_);
  sub->slot = subs_.size();
  subs_.push_back(sub);
  return sub;
}

void Hub::unsubscribe(const std::shared_ptr<Subscription>& sub) {
  sub->channel.close();  // a publisher holding a copy sees it closed
  std::lock_guard<std::mutex> lock(mu_);
  if (sub->slot >= subs_.size() || subs_[sub->slot] != sub) return;
  dropped_gone_ += sub->channel.dropped();
  subs_[sub->slot] = std::move(subs_.back());
  subs_[sub->slot]->slot = sub->slot;
  subs_.pop_back();
}

uringrpc::Stream<helloworld::HelloReply> FanoutService::SayHelloStream(helloworld::HelloRequest,
                                                                       uringrpc::ServerContext& ctx) {
  auto sub = hub_.subscribe();
  // Leaves the hub however the handler ends, a cancelled call's destroyed frame included.
  struct Leave {
    Hub& hub;
    std::shared_ptr<Hub::Subscription> sub;
    ~Leave() { hub.unsubscribe(sub); }
  } leave{hub_, sub};
  while (auto message = co_await sub->channel.receive()) {
    helloworld::HelloReply reply;
    reply.set_message(**message);
    co_yield reply;  // suspends while the client reads slower than the write watermark
  }
  if (sub->overflowed) {
    ctx.abort(uringrpc::StatusCode::RESOURCE_EXHAUSTED,
              "subscriber too slow: more than " + std::to_string(sub->channel.capacity()) + " messages queued");
  }
}

}  // namespace example
