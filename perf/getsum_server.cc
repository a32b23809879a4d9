// Our server for HttpArena's gRPC unary profile (perf/getsum_bench.py): benchmark.BenchmarkService
// from perf/proto/benchmark.proto, served through the class protoc-gen-uringrpc generates, with
// the default ServerOptions (one shard per CPU of the affinity mask, every limit at its
// default): the profile's "standard library, default configuration" rule. Only the port is
// set. Usage: getsum-server --port N
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include <uringrpc/uringrpc.h>

#include "anchors/stop_waiter.h"
#include "benchmark.uringrpc.pb.h"

namespace {

class Sum final : public benchmark::BenchmarkServiceService {
  uringrpc::Task<benchmark::SumReply> GetSum(benchmark::SumRequest request,
                                             uringrpc::ServerContext&) override {
    benchmark::SumReply reply;
    reply.set_result(request.a() + request.b());
    co_return reply;
  }
};

}  // namespace

int main(int argc, char** argv) {
  bench::block_stop_signals();  // before the shards start: they inherit the mask
  unsigned port = 0;
  std::string_view flag = argc == 3 ? argv[1] : "";
  std::string_view value = argc == 3 ? argv[2] : "";
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
  if (flag != "--port" || ec != std::errc() || end != value.data() + value.size() || port > 65535) {
    std::fprintf(stderr, "usage: %s --port N\n", argv[0]);
    return 2;
  }

  Sum service;  // declared before the server, so that it outlives it
  uringrpc::Server server;  // default ServerOptions
  server.add_service(service);
  int bound = 0;
  try {
    // Loopback only, and the same address in every server of the benchmark.
    bound = server.add_insecure_port("127.0.0.1:" + std::to_string(port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  server.start();
  std::cout << "listening on " << bound << std::endl;  // endl flushes: the runner waits for it
  bench::wait_for_stop();
  server.stop(std::chrono::seconds(2));
  return 0;
}
