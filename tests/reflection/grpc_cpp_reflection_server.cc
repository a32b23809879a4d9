// grpc-cpp-reflection-server (test only): gRPC C++'s own reflection service
// (libgrpc++_reflection, grpc.reflection.v1alpha) over the same protos as our servers, so
// that reflection-tests can check our answers against theirs.
// Usage: grpc-cpp-reflection-server greeter|interop|extensions. Prints "listening on PORT"; runs until killed.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>

#include "grpc/testing/test.grpc.pb.h"
#include "helloworld.grpc.pb.h"
#include "reflection_test.grpc.pb.h"

int main(int argc, char** argv) {
  std::string which = argc == 2 ? argv[1] : "";
  if (which != "greeter" && which != "interop" && which != "extensions") {
    std::fprintf(stderr, "usage: %s greeter|interop|extensions\n", argv[0]);
    return 2;
  }
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // The services example-server (greeter) or interop-server (interop) registers, or the
  // Probe of proto/reflection_test.proto (extensions); no method is implemented, reflection
  // is all that is asked of them.
  helloworld::Greeter::Service greeter;
  grpc::testing::TestService::Service test_service;
  grpc::testing::UnimplementedService::Service unimplemented_service;
  uringrpc::reflection_test::Probe::Service probe;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  if (which == "greeter") {
    builder.RegisterService(&greeter);
  } else if (which == "extensions") {
    builder.RegisterService(&probe);
  } else {
    builder.RegisterService(&test_service);
    builder.RegisterService(&unimplemented_service);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "grpc-cpp-reflection-server: cannot start\n");
    return 1;
  }
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
  server->Wait();
}
