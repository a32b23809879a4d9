// backend-call-example: serves helloworld.Greeter/SayHello by asking a backend
// helloworld.Greeter (any gRPC server) through gRPC C++'s callback client.
// Usage: backend-call-example --backend HOST:PORT [--port N] [--shards N]
// Serves until Enter is pressed (or stdin closes), then stops gracefully.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "frontend_greeter.h"

int main(int argc, char** argv) {
  std::string backend;
  int port = 50052;
  unsigned shards = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--backend")) backend = argv[i + 1];
    else if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--shards")) shards = static_cast<unsigned>(std::atoi(argv[i + 1]));
    else backend.clear(), i = argc;
  }
  if (backend.empty()) {
    std::fprintf(stderr, "usage: %s --backend HOST:PORT [--port N] [--shards N]\n", argv[0]);
    return 2;
  }
  // The frontend outlives the server; its stub (and gRPC's threads) outlive every call.
  example::FrontendGreeter frontend(grpc::CreateChannel(backend, grpc::InsecureChannelCredentials()));
  uringrpc::Server server({.shards = shards});
  server.add_service(frontend);
  port = server.add_insecure_port("[::]:" + std::to_string(port));
  server.start();
  std::printf("listening on %d, backend %s\n", port, backend.c_str());
  std::fflush(stdout);
  std::getchar();
  server.stop(std::chrono::seconds(5));
}
