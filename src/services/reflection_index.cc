// ReflectionIndex (reflection_index.h): walks the registered services' files and their
// imports once, serializing each file once, so that answers are lookups.
#include "services/reflection_index.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

namespace uringrpc::services {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

ReflectionIndex::ReflectionIndex(const std::vector<RegisteredService>& services) {
  for (const RegisteredService& s : services) {
    service_names_.push_back(s.full_name);
    if (s.descriptor) add_file(s.descriptor->file());
  }
}

void ReflectionIndex::add_file(const FileDescriptor* file) {
  if (!files_.emplace(file->name(), file).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(&serialized_[file]);
  pools_.insert(file->pool());
  for (int i = 0; i < file->extension_count(); ++i) {
    const FieldDescriptor* ext = file->extension(i);
    extensions_[ext->containing_type()][ext->number()] = ext;
  }
  for (int i = 0; i < file->message_type_count(); ++i) add_extensions(file->message_type(i));
  for (int i = 0; i < file->dependency_count(); ++i) add_file(file->dependency(i));
}

// Extensions may be declared inside a message ("extend Foo { ... }" nested in Bar).
void ReflectionIndex::add_extensions(const Descriptor* scope) {
  for (int i = 0; i < scope->extension_count(); ++i) {
    const FieldDescriptor* ext = scope->extension(i);
    extensions_[ext->containing_type()][ext->number()] = ext;
  }
  for (int i = 0; i < scope->nested_type_count(); ++i) add_extensions(scope->nested_type(i));
}

const FileDescriptor* ReflectionIndex::file_by_name(const std::string& name) const {
  auto it = files_.find(name);
  return it == files_.end() ? nullptr : it->second;
}

const FileDescriptor* ReflectionIndex::file_containing_symbol(const std::string& symbol) const {
  for (const google::protobuf::DescriptorPool* pool : pools_) {
    const FileDescriptor* file = pool->FindFileContainingSymbol(symbol);
    // A pool holds more than this server serves (every linked .proto): only indexed files.
    if (file && serialized_.count(file)) return file;
  }
  return nullptr;
}

const Descriptor* ReflectionIndex::message_type(const std::string& full_name) const {
  for (const google::protobuf::DescriptorPool* pool : pools_) {
    const Descriptor* type = pool->FindMessageTypeByName(full_name);
    if (type && serialized_.count(type->file())) return type;
  }
  return nullptr;
}

std::vector<const FieldDescriptor*> ReflectionIndex::extensions_of(const Descriptor* type) const {
  std::vector<const FieldDescriptor*> out;
  if (auto it = extensions_.find(type); it != extensions_.end()) {
    for (const auto& [number, ext] : it->second) out.push_back(ext);
  }
  return out;
}

std::vector<std::string> ReflectionIndex::file_and_dependencies(const FileDescriptor* file) const {
  std::vector<std::string> out;
  std::set<const FileDescriptor*> seen;
  std::vector<const FileDescriptor*> todo{file};  // a stack: depth first, imports in order
  while (!todo.empty()) {
    const FileDescriptor* f = todo.back();
    todo.pop_back();
    if (!seen.insert(f).second) continue;
    out.push_back(serialized_.at(f));
    for (int i = f->dependency_count(); i-- > 0;) todo.push_back(f->dependency(i));
  }
  return out;
}

}  // namespace uringrpc::services
