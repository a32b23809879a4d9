// protoc-gen-uringrpc: the protoc plugin that turns .proto services into uringrpc service
// classes. protoc runs it for --uringrpc_out (see man/protoc-gen-uringrpc.1).
#include <google/protobuf/compiler/plugin.h>

#include "codegen/generator.h"

int main(int argc, char* argv[]) {
  uringrpc::codegen::Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}
