// The example server `make run` starts: helloworld.Greeter (proto/helloworld.proto) with a
// unary and a server-streaming method. Usage: example-server [--port N] [--shards N]
// It serves until SIGINT or SIGTERM, then stops gracefully (5 s grace) and exits 0.
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include <uringrpc/protobuf.h>
#include <uringrpc/uringrpc.h>

#include "helloworld.pb.h"

using helloworld::HelloReply;
using helloworld::HelloRequest;

namespace {

constexpr const char* kGreetings[] = {"Hello", "Bonjour", "Hola", "Hallo", "Ciao"};

uringrpc::Task<HelloReply> say_hello(HelloRequest request, uringrpc::ServerContext&) {
  HelloReply reply;
  reply.set_message("Hello " + request.name());
  co_return reply;
}

// Each co_yield sends one reply; the Stream finds the ServerContext among the parameters.
uringrpc::Stream<HelloReply> say_hello_stream(HelloRequest request, uringrpc::ServerContext&) {
  for (const char* greeting : kGreetings) {
    HelloReply reply;
    reply.set_message(std::string(greeting) + " " + request.name());
    co_yield reply;
  }
}

bool parse_number(const char* text, unsigned& out) {
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

int main(int argc, char** argv) {
  unsigned port = 50051;
  uringrpc::ServerOptions options;  // shards = 0: one per CPU
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    bool ok = i + 1 < argc && ((flag == "--port" && parse_number(argv[++i], port) && port < 65536) ||
                               (flag == "--shards" && parse_number(argv[++i], options.shards)));
    if (!ok) {
      std::fprintf(stderr, "usage: %s [--port N] [--shards N]\n", argv[0]);
      return 2;
    }
  }

  // Block the stop signals before any server thread exists, so every thread inherits the
  // mask and only sigwait() below ever receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  uringrpc::Server server(options);
  server.add_method("/helloworld.Greeter/SayHello", uringrpc::unary(say_hello));
  server.add_method("/helloworld.Greeter/SayHelloStream",
                    uringrpc::server_streaming(say_hello_stream));
  int bound = 0;
  try {
    bound = server.add_insecure_port("localhost:" + std::to_string(port));
  } catch (const uringrpc::BindError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  server.start();
  std::cout << "listening on " << bound << std::endl;  // endl flushes: scripts wait for it

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::fprintf(stderr, "signal %d: stopping, in-flight calls get up to 5 s\n", signal);
  server.stop(std::chrono::seconds(5));
  return 0;
}
