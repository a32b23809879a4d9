// The example server `make run` starts: helloworld.Greeter (proto/helloworld.proto) served
// from the class protoc-gen-uringrpc generates, and server reflection (grpc-call lists and
// calls it). Usage: example-server [--port N] [--shards N] [--tls-cert FILE --tls-key FILE]
// [--grace-ms MS]. It serves until SIGINT or SIGTERM, then stops gracefully and exits 0;
// SIGHUP reloads the TLS files.
// man uringrpc-example-server(8); its systemd units are greeter.service and greeter.socket.
#include <string>

#include "daemon.h"
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
  example::DaemonFlags flags;  // --port, --shards, --grace-ms: examples/greeter/daemon.h
  if (!example::parse_flags(argc, argv, flags)) return 2;
  const uringrpc::ServerOptions& options = flags.options;  // shards = 0: one per CPU
  example::block_stop_signals();
  Greeter greeter;  // both declared before the server, so that they outlive it
  uringrpc::ReflectionService reflection;  // grpc.reflection.v1 and v1alpha
  uringrpc::Server server(options);
  server.add_service(greeter);
  server.add_service(reflection);
  return example::serve(server, flags);  // socket activation, SIGTERM: daemon.cc
}
