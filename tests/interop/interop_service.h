// grpc.testing.TestService as gRPC's interop test descriptions ask of a server
// (doc/interop-test-descriptions.md in grpc/grpc, "Server" features), on the class our
// protoc plugin generates from Debian's grpc-proto. Served by interop_server.cc.
#pragma once

#include "grpc/testing/test.uringrpc.pb.h"

namespace uringrpc::interop {

// Every rpc except UnimplementedCall, which keeps the generated UNIMPLEMENTED default as
// the unimplemented_method case expects. Stateless: one instance serves every shard.
class InteropTestService final : public grpc::testing::TestServiceService {
 public:
  Task<grpc::testing::Empty> EmptyCall(grpc::testing::Empty, ServerContext& ctx) override;
  Task<grpc::testing::SimpleResponse> UnaryCall(grpc::testing::SimpleRequest req, ServerContext& ctx) override;
  Task<grpc::testing::SimpleResponse> CacheableUnaryCall(grpc::testing::SimpleRequest req,
                                                         ServerContext& ctx) override;
  Stream<grpc::testing::StreamingOutputCallResponse> StreamingOutputCall(
      grpc::testing::StreamingOutputCallRequest req, ServerContext& ctx) override;
  Task<grpc::testing::StreamingInputCallResponse> StreamingInputCall(
      Reader<grpc::testing::StreamingInputCallRequest>& reader, ServerContext& ctx) override;
  Stream<grpc::testing::StreamingOutputCallResponse> FullDuplexCall(
      Reader<grpc::testing::StreamingOutputCallRequest>& reader, ServerContext& ctx) override;
  Stream<grpc::testing::StreamingOutputCallResponse> HalfDuplexCall(
      Reader<grpc::testing::StreamingOutputCallRequest>& reader, ServerContext& ctx) override;
};

}  // namespace uringrpc::interop
