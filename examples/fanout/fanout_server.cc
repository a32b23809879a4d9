// fanout-example: helloworld.Greeter/SayHelloStream as a subscription to a ticker. One
// publisher thread broadcasts "tick N" every --interval-ms to every subscriber on every
// shard; a subscriber more than --queue messages behind gets the --policy (drop-oldest:
// it skips ahead; disconnect: RESOURCE_EXHAUSTED).
// Usage: fanout-example [--port N] [--shards N] [--queue N] [--interval-ms MS]
//                       [--policy drop-oldest|disconnect]
// Serves until Enter is pressed (or stdin closes), then ends every subscription and stops.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "fanout.h"

int main(int argc, char** argv) {
  int port = 50053;
  unsigned shards = 0;
  size_t queue = 64;
  int interval_ms = 100;
  example::SlowPolicy policy = example::SlowPolicy::kDisconnect;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--port") port = std::atoi(value.c_str());
    else if (flag == "--shards") shards = static_cast<unsigned>(std::atoi(value.c_str()));
    else if (flag == "--queue") queue = static_cast<size_t>(std::atol(value.c_str()));
    else if (flag == "--interval-ms") interval_ms = std::atoi(value.c_str());
    else if (flag == "--policy" && value == "drop-oldest") policy = example::SlowPolicy::kDropOldest;
    else if (flag == "--policy" && value == "disconnect") policy = example::SlowPolicy::kDisconnect;
    else {
      std::fprintf(stderr, "usage: %s [--port N] [--shards N] [--queue N] [--interval-ms MS] "
                           "[--policy drop-oldest|disconnect]\n", argv[0]);
      return 2;
    }
  }
  example::Hub hub(queue == 0 ? 1 : queue, policy);  // outlives the server
  example::FanoutService service(hub);
  uringrpc::Server server({.shards = shards});
  server.add_service(service);
  port = server.add_insecure_port("[::]:" + std::to_string(port));
  server.start();
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (uint64_t n = 0; !stop; ++n) {
      hub.publish(std::make_shared<const std::string>("tick " + std::to_string(n)));
      std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
  });
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  std::getchar();
  stop = true;
  publisher.join();
  hub.close_all();
  server.stop(std::chrono::seconds(5));
}
