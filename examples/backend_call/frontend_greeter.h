// A uringrpc service whose handler calls a backend gRPC service through gRPC C++'s callback
// client and awaits the answer with uringrpc::from_callback: neither the shard nor an
// offload thread waits for the backend. Used by backend_call_server.cc and tests/wake.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "helloworld.grpc.pb.h"      // the backend's client stub (grpc_cpp_plugin)
#include "helloworld.uringrpc.pb.h"  // the service this server offers (protoc-gen-uringrpc)

namespace example {

class FrontendGreeter : public helloworld::GreeterService {
 public:
  explicit FrontendGreeter(std::shared_ptr<grpc::Channel> backend)
      : stub_(helloworld::Greeter::NewStub(std::move(backend))) {}

  // Asks the backend's SayHello with the same name (within this call's deadline) and
  // answers "frontend: <backend's message>"; a backend error reaches the client as it is.
  uringrpc::Task<helloworld::HelloReply> SayHello(helloworld::HelloRequest request,
                                                  uringrpc::ServerContext& ctx) override;

 private:
  std::unique_ptr<helloworld::Greeter::Stub> stub_;
};

}  // namespace example
