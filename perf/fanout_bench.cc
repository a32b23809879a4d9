// fanout-bench: one publisher thread broadcasting to many server-streaming subscribers
// (examples/fanout: a Hub of uringrpc::Channel, one per subscriber, on every shard), read by
// the real gRPC C++ client (callback reactors over several connections) in the same process.
// Prints messages delivered per second and the p50/p99/max delivery latency (publish() to
// the client's OnReadDone, one steady clock), with the command that produced them.
// Usage: fanout-bench [--subscribers N] [--shards N] [--messages N] [--burst N]
//                     [--queue N] [--streams-per-connection N]
// The publisher sends bursts of --burst messages, each once every subscriber has the
// previous burst, so no queue overflows (the policy is disconnect: any overflow would show).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../examples/fanout/fanout.h"
#include "helloworld.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

std::atomic<uint64_t> g_delivered{0};
std::atomic<uint64_t> g_finished{0};

class Sub final : public grpc::ClientReadReactor<helloworld::HelloReply> {
 public:
  Sub(helloworld::Greeter::Stub& stub, size_t expected) {
    latencies_us.reserve(expected);
    stub.async()->SayHelloStream(&ctx_, &req_, this);
    StartRead(&reply_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    int64_t now = now_ns();
    const char* text = reply_.message().c_str();  // "m <seq> <publish ns>"
    char* end = nullptr;
    std::strtoull(text + 2, &end, 10);
    int64_t sent = std::strtoll(end, nullptr, 10);
    latencies_us.push_back(static_cast<uint32_t>((now - sent) / 1000));
    g_delivered.fetch_add(1, std::memory_order_relaxed);
    StartRead(&reply_);
  }
  void OnDone(const grpc::Status& s) override {
    ok = s.ok();
    g_finished.fetch_add(1);
  }
  std::vector<uint32_t> latencies_us;
  bool ok = false;

 private:
  grpc::ClientContext ctx_;
  helloworld::HelloRequest req_;
  helloworld::HelloReply reply_;
};

bool wait_for(const std::function<bool()>& pred, std::chrono::seconds limit) {
  auto until = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t subscribers = 10000, messages = 200, burst = 64, queue = 256, per_connection = 90;
  unsigned shards = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (flag == "--subscribers") subscribers = v;
    else if (flag == "--shards") shards = static_cast<unsigned>(v);
    else if (flag == "--messages") messages = v;
    else if (flag == "--burst") burst = v;
    else if (flag == "--queue") queue = v;
    else if (flag == "--streams-per-connection") per_connection = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (!subscribers || !messages || !burst || !queue || !per_connection || burst > queue) {
    std::fprintf(stderr, "every figure must be positive, and --burst at most --queue\n");
    return 2;
  }
  example::Hub hub(queue, example::SlowPolicy::kDisconnect);
  example::FanoutService service(hub);
  uringrpc::Server server({.shards = shards});
  server.add_service(service);
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();

  // Each connection below the server's 100 concurrent streams; its own subchannel.
  size_t connections = (subscribers + per_connection - 1) / per_connection;
  std::vector<std::unique_ptr<helloworld::Greeter::Stub>> stubs;
  for (size_t c = 0; c < connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("fanout-bench.connection", static_cast<int>(c));  // no subchannel sharing
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 1 << 20);
    stubs.push_back(helloworld::Greeter::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args)));
  }
  std::vector<std::unique_ptr<Sub>> subs;
  auto t_subscribe = Clock::now();
  for (size_t i = 0; i < subscribers; ++i) subs.push_back(std::make_unique<Sub>(*stubs[i % connections], messages));
  if (!wait_for([&] { return hub.subscribers() == subscribers; }, std::chrono::seconds(120))) {
    std::fprintf(stderr, "only %zu of %zu subscribed\n", hub.subscribers(), subscribers);
    return 1;
  }
  double subscribe_s = std::chrono::duration<double>(Clock::now() - t_subscribe).count();
  auto by_shard = hub.subscribers_by_shard();

  auto t0 = Clock::now();
  bool stalled = false;
  for (size_t m = 0; m < messages && !stalled; ++m) {
    if (m % burst == 0) {
      uint64_t want = m * subscribers;
      stalled = !wait_for([&] { return g_delivered.load() >= want; }, std::chrono::seconds(60));
    }
    hub.publish(std::make_shared<const std::string>("m " + std::to_string(m) + " " + std::to_string(now_ns())));
  }
  uint64_t total = static_cast<uint64_t>(messages) * subscribers;
  stalled = stalled || !wait_for([&] { return g_delivered.load() >= total; }, std::chrono::seconds(60));
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  hub.close_all();
  wait_for([&] { return g_finished.load() == subscribers; }, std::chrono::seconds(60));

  std::vector<uint32_t> all;
  all.reserve(total);
  size_t failed = 0;
  for (auto& s : subs) {
    all.insert(all.end(), s->latencies_us.begin(), s->latencies_us.end());
    if (!s->ok) ++failed;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0u : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))]; };

  std::printf("command: %s", argv[0]);
  for (int i = 1; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\nsetup: %zu subscribers over %zu connections, %u shards (", subscribers, connections, shards);
  for (size_t i = 0; i < by_shard.size(); ++i) std::printf("%s%zu", i ? " / " : "", by_shard[i]);
  std::printf(" per shard), %zu messages in bursts of %zu, queue %zu; client, server and publisher share this host\n",
              messages, burst, queue);
  std::printf("subscribed in %.2f s\n", subscribe_s);
  std::printf("delivered %zu of %llu messages in %.3f s: %.0f messages/s\n", all.size(),
              static_cast<unsigned long long>(total), seconds, static_cast<double>(all.size()) / seconds);
  std::printf("delivery latency: p50 %u us, p99 %u us, max %u us\n", pct(0.50), pct(0.99), all.empty() ? 0u : all.back());
  std::printf("disconnected (queue overflow): %llu, calls not ending OK: %zu%s\n",
              static_cast<unsigned long long>(hub.disconnected()), failed, stalled ? ", STALLED" : "");
  server.stop(std::chrono::seconds(2));
  wait_for([&] { return g_finished.load() == subscribers; }, std::chrono::seconds(30));
  if (g_finished.load() != subscribers) std::_Exit(1);  // a reactor still in use must not be freed
  subs.clear();
  return stalled || failed || hub.disconnected() ? 1 : 0;
}
