// The example server `make run` starts: helloworld.Greeter (proto/helloworld.proto) from the
// class protoc-gen-uringrpc generates, and server reflection (grpc-call lists and calls it).
// Usage: example-server [--port N] [--shards N]. SIGINT/SIGTERM: stops with 5 s grace, exits 0.
#include <signal.h>
#include <cstdio>
#include <string>

#include "helloworld.uringrpc.pb.h"

using helloworld::HelloReply, helloworld::HelloRequest;
class Greeter : public helloworld::GreeterService {
  uringrpc::Task<HelloReply> SayHello(HelloRequest request, uringrpc::ServerContext&) override {
    HelloReply reply;
    reply.set_message("Hello " + request.name());
    co_return reply;
  }
  uringrpc::Stream<HelloReply> SayHelloStream(HelloRequest request, uringrpc::ServerContext&) override {
    for (const char* greeting : {"Hello", "Bonjour", "Hola", "Hallo", "Ciao"}) {
      HelloReply reply;
      reply.set_message(std::string(greeting) + " " + request.name());
      co_yield reply;  // sends one reply
    }
  }
};

int main(int argc, char** argv) {
  unsigned port = 50051;
  uringrpc::ServerOptions options;  // shards = 0: one per CPU
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    unsigned* value = flag == "--port" ? &port : flag == "--shards" ? &options.shards : nullptr;
    char extra;  // "%u%c" matches 1 field only when the whole argument is a number
    if (!value || i + 1 == argc || std::sscanf(argv[i + 1], "%u%c", value, &extra) != 1 || *value > 65535) {
      std::fprintf(stderr, "usage: %s [--port N] [--shards N]\n", argv[0]);
      return 2;
    }
  }
  sigset_t stop_signals;  // blocked before any server thread exists: only sigwaitinfo() gets them
  sigemptyset(&stop_signals);
  for (int s : {SIGINT, SIGTERM}) sigaddset(&stop_signals, s);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  Greeter greeter;  // both declared before the server, so that they outlive it
  uringrpc::ReflectionService reflection;  // grpc.reflection.v1 and v1alpha
  uringrpc::Server server(options);
  server.add_service(greeter);
  server.add_service(reflection);
  try {
    int bound = server.add_insecure_port("localhost:" + std::to_string(port));
    server.start();
    std::printf("listening on %d\n", bound);
    std::fflush(stdout);  // scripts wait for this line
  } catch (const uringrpc::BindError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  int signal = sigwaitinfo(&stop_signals, nullptr);
  std::fprintf(stderr, "signal %d: stopping, in-flight calls get up to 5 s\n", signal);
  server.stop(std::chrono::seconds(5));
}
