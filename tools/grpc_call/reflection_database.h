// A protobuf DescriptorDatabase answered by the server's reflection service over one
// stream: grpc.reflection.v1 first, v1alpha when the server does not have v1. A
// DescriptorPool over it finds services, methods and messages the way grpcurl does.
#pragma once

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "generic_call.h"

namespace grpccall {

class ReflectionDatabase : public google::protobuf::DescriptorDatabase {
 public:
  ReflectionDatabase(std::shared_ptr<grpc::Channel> channel, CallOptions options);
  ~ReflectionDatabase() override;

  // The services the server lists; nullopt when reflection failed (failure() says why).
  std::optional<std::vector<std::string>> list_services();
  // Set when a reflection RPC failed (the server has no reflection, is unreachable, the
  // deadline passed...): lookups then find nothing, and grpc-call reports this status.
  const std::optional<grpc::Status>& failure() const noexcept { return failure_; }

  bool FindFileByName(const std::string& filename, google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingSymbol(const std::string& symbol_name, google::protobuf::FileDescriptorProto* output) override;
  bool FindFileContainingExtension(const std::string& containing_type, int field_number,
                                   google::protobuf::FileDescriptorProto* output) override;

 private:
  struct Answer;
  // Sends one request and reads its response (opening the stream on first use);
  // nullopt when the RPC failed (failure_ set).
  template <class Fill>
  std::optional<Answer> ask(Fill fill);
  // Keeps every file of a file_descriptor_response; outputs the first (the one asked for).
  bool take_files(const Answer& answer, google::protobuf::FileDescriptorProto* output);

  std::shared_ptr<grpc::Channel> channel_;
  CallOptions options_;
  std::unique_ptr<GenericCall> stream_;
  bool v1alpha_ = false;  // the server answered v1 with UNIMPLEMENTED
  std::optional<grpc::Status> failure_;
  std::map<std::string, google::protobuf::FileDescriptorProto> files_;
};

}  // namespace grpccall
