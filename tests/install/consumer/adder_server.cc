// An out-of-tree program using an installed uringrpc the way a user would: the service class
// protoc-gen-uringrpc generated from adder.proto, the public headers and nothing else.
// Prints "listening on PORT" (127.0.0.1, a free port) and serves until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <uringrpc/uringrpc.h>

#include "adder.uringrpc.pb.h"

class Adder : public consumer::AdderService {
  uringrpc::Task<consumer::Sum> Add(consumer::Terms terms, uringrpc::ServerContext&) override {
    consumer::Sum sum;
    for (auto t : terms.term()) sum.set_value(sum.value() + t);
    co_return sum;
  }
  uringrpc::Stream<consumer::Sum> Count(consumer::Limit limit, uringrpc::ServerContext& ctx) override {
    if (limit.to() < 0) ctx.abort(uringrpc::StatusCode::INVALID_ARGUMENT, "negative limit");
    for (int64_t i = 1; i <= limit.to(); ++i) {
      consumer::Sum n;
      n.set_value(i);
      co_yield n;
    }
  }
};

int main() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int s : {SIGINT, SIGTERM}) sigaddset(&stop_signals, s);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before the shard threads exist
  Adder adder;
  uringrpc::Server server({.shards = 1});
  server.add_service(adder);
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  sigwaitinfo(&stop_signals, nullptr);
  server.stop(std::chrono::seconds(1));
}
