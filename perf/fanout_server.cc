// fanout-server: our side of `make fanout-compare` (perf/fanout_compare.py). examples/fanout's
// Hub and SayHelloStream subscription on K shards, with the publisher a thread of this process
// that a client drives through the unary SayHello, so that a separate client process can load
// us and the grpc-go anchor (perf/anchors/go/fanout) in exactly the same way. Commands, as
// HelloRequest.name (the reply's message is the answer):
//   "publish N U"  the publisher publishes N messages, one every U µs (0: back to back); each
//                  is "m <seq> <CLOCK_MONOTONIC ns when published>"; answered at once
//   "stats"        "subscribers S dropped D disconnected X publish_ms T": T is how long the
//                  publisher took over its last "publish" (every subscriber's queue filled)
//   "close"        the publisher ends every subscription (each gets what is queued, then OK)
// Usage: fanout-server [--port N] [--shards K] [--queue N] [--policy drop-oldest|disconnect]
// Prints "listening on PORT"; serves until stdin closes.
#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "../examples/fanout/fanout.h"

namespace {

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The publisher thread and its job queue: every write to the hub (publish, close) comes from
// this one thread, as in examples/fanout, so a command never makes a shard wait on the hub.
class Publisher {
 public:
  explicit Publisher(example::Hub& hub) : hub_(hub), thread_([this] { run(); }) {}
  ~Publisher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  // count == 0 means close every subscription.
  void submit(uint64_t count, uint64_t interval_us) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back({count, interval_us});
    }
    cv_.notify_one();
  }
  uint64_t last_job_ms() const { return last_job_ms_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    uint64_t count, interval_us;
  };
  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        job = jobs_.front();
        jobs_.pop_front();
      }
      if (job.count == 0) {
        hub_.close_all();
        continue;
      }
      // An absolute schedule: a slow publish() delays the next message, never the rate after.
      auto start = std::chrono::steady_clock::now();
      for (uint64_t i = 0; i < job.count; ++i) {
        if (job.interval_us && i) std::this_thread::sleep_until(start + std::chrono::microseconds(i * job.interval_us));
        hub_.publish(std::make_shared<const std::string>("m " + std::to_string(seq_++) + " " +
                                                         std::to_string(monotonic_ns())));
      }
      last_job_ms_.store(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start).count()), std::memory_order_relaxed);
    }
  }

  example::Hub& hub_;
  uint64_t seq_ = 0;  // publisher thread only
  std::atomic<uint64_t> last_job_ms_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

class BenchFanoutService : public example::FanoutService {
 public:
  BenchFanoutService(example::Hub& hub, Publisher& publisher) : FanoutService(hub), hub_(hub), publisher_(publisher) {}

  uringrpc::Task<helloworld::HelloReply> SayHello(helloworld::HelloRequest request, uringrpc::ServerContext& ctx) override {
    helloworld::HelloReply reply;
    std::istringstream in(request.name());
    std::string command;
    in >> command;
    uint64_t count = 0, interval_us = 0;
    if (command == "publish" && (in >> count >> interval_us) && count > 0) {
      publisher_.submit(count, interval_us);
      reply.set_message("ok");
    } else if (command == "close") {
      publisher_.submit(0, 0);
      reply.set_message("ok");
    } else if (command == "stats") {
      reply.set_message("subscribers " + std::to_string(hub_.subscribers()) + " dropped " +
                        std::to_string(hub_.dropped()) + " disconnected " + std::to_string(hub_.disconnected()) +
                        " publish_ms " + std::to_string(publisher_.last_job_ms()));
    } else {
      ctx.abort(uringrpc::StatusCode::INVALID_ARGUMENT, "commands: publish N U, stats, close");
    }
    co_return reply;
  }

 private:
  example::Hub& hub_;
  Publisher& publisher_;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  unsigned shards = 2;
  size_t queue = 256;
  example::SlowPolicy policy = example::SlowPolicy::kDisconnect;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--port") port = std::atoi(value.c_str());
    else if (flag == "--shards") shards = static_cast<unsigned>(std::atoi(value.c_str()));
    else if (flag == "--queue") queue = static_cast<size_t>(std::atol(value.c_str()));
    else if (flag == "--policy" && value == "drop-oldest") policy = example::SlowPolicy::kDropOldest;
    else if (flag == "--policy" && value == "disconnect") policy = example::SlowPolicy::kDisconnect;
    else {
      std::fprintf(stderr, "usage: %s [--port N] [--shards K] [--queue N] [--policy drop-oldest|disconnect]\n", argv[0]);
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "%s: flag %s needs a value\n", argv[0], argv[argc - 1]);
    return 2;
  }
  example::Hub hub(queue == 0 ? 1 : queue, policy);  // outlives the server and the publisher
  Publisher publisher(hub);
  BenchFanoutService service(hub, publisher);
  uringrpc::Server server({.shards = shards});
  server.add_service(service);
  port = server.add_insecure_port("127.0.0.1:" + std::to_string(port));  // loopback only
  server.start();
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  while (std::getchar() != EOF) {
  }
  publisher.submit(0, 0);  // every subscription ends OK before the server stops
  server.stop(std::chrono::seconds(5));
}
