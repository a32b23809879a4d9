// What server reflection answers from: the files of the services a Server registered and
// every file they import, transitively, indexed once. Built by ReflectionService at its first
// request (reflection_service.cc), then only read, from any shard.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "uringrpc/server.h"

namespace google::protobuf {
class Descriptor;
class DescriptorPool;
class FieldDescriptor;
class FileDescriptor;
}  // namespace google::protobuf

namespace uringrpc::services {

class ReflectionIndex {
 public:
  explicit ReflectionIndex(const std::vector<RegisteredService>& services);

  // Every registered service's full name, in registration order.
  const std::vector<std::string>& service_names() const noexcept { return service_names_; }

  // Null when the file, symbol or type is not among the indexed files.
  const google::protobuf::FileDescriptor* file_by_name(const std::string& name) const;
  // Services, methods, messages, enums, enum values, fields, oneofs, extensions, nested
  // types: whatever protobuf's DescriptorPool::FindFileContainingSymbol finds.
  const google::protobuf::FileDescriptor* file_containing_symbol(const std::string& symbol) const;
  const google::protobuf::Descriptor* message_type(const std::string& full_name) const;
  // The extensions of `type` declared in the indexed files, by ascending number.
  std::vector<const google::protobuf::FieldDescriptor*> extensions_of(const google::protobuf::Descriptor* type) const;

  // `file` first, then its imports depth first, each file once (as gRPC C++ answers), as
  // serialized FileDescriptorProtos.
  std::vector<std::string> file_and_dependencies(const google::protobuf::FileDescriptor* file) const;

 private:
  void add_file(const google::protobuf::FileDescriptor* file);
  void add_extensions(const google::protobuf::Descriptor* scope);

  std::vector<std::string> service_names_;
  std::map<std::string, const google::protobuf::FileDescriptor*> files_;
  std::map<const google::protobuf::FileDescriptor*, std::string> serialized_;
  std::set<const google::protobuf::DescriptorPool*> pools_;
  std::map<const google::protobuf::Descriptor*, std::map<int, const google::protobuf::FieldDescriptor*>> extensions_;
};

}  // namespace uringrpc::services
