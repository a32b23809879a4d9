// grpc.testing.TestService as gRPC's interop test descriptions ask of a server
// (doc/interop-test-descriptions.md in grpc/grpc, "Server" features), on the class our
// protoc plugin generates from Debian's grpc-proto. Served by interop_server.cc.
#pragma once

#include <string>
#include <utility>

#include "grpc/testing/test.uringrpc.pb.h"

namespace uringrpc::interop {

// Every rpc except UnimplementedCall, which keeps the generated UNIMPLEMENTED default as
// the unimplemented_method case expects. Stateless: one instance serves every shard.
class InteropTestService final : public grpc::testing::TestServiceService {
 public:
  // The initial-metadata key naming the answering instance (interop-server --server_id).
  static constexpr const char* kServedByKey = "x-served-by";

  // `served_by` non-empty: every response's headers carry x-served-by: served_by.
  explicit InteropTestService(std::string served_by = {}) : served_by_(std::move(served_by)) {}

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

 private:
  void start_call(ServerContext& ctx) const;

  std::string served_by_;
};

}  // namespace uringrpc::interop
