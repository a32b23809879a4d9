// protoc-gen-uringrpc's code generator: protoc (through main.cc's PluginMain) hands it each
// .proto file and it writes X.uringrpc.pb.h / X.uringrpc.pb.cc beside protobuf's X.pb.h.
#pragma once

#include <google/protobuf/compiler/code_generator.h>

#include <string>

namespace uringrpc::codegen {

class Generator : public google::protobuf::compiler::CodeGenerator {
 public:
  bool Generate(const google::protobuf::FileDescriptor* file, const std::string& parameter,
                google::protobuf::compiler::GeneratorContext* context,
                std::string* error) const override;
  uint64_t GetSupportedFeatures() const override { return FEATURE_PROTO3_OPTIONAL; }
};

}  // namespace uringrpc::codegen
