// C++ names for what protoc-gen-uringrpc generates: the namespace of a proto package, the
// service class of a proto service and the member function of each rpc. The generator
// (generator.cc) asks here; the rules are the ones man/protoc-gen-uringrpc.1 documents.
#pragma once

#include <google/protobuf/descriptor.h>

#include <string>
#include <vector>

namespace uringrpc::codegen {

// True for C++20 keywords and alternative tokens (`and`, `bitor`, ...).
bool is_cpp_keyword(const std::string& name);

// "a.b.c" -> "::a::b::c", as protobuf names the namespace of the .pb.h's messages (the
// generated services sit beside them). "" for no package.
std::string package_namespace(const std::string& package);

// The service class: "<Service>Service", with '_' appended while that name is taken by
// something protobuf or grpc_cpp_plugin declares in the same namespace from this file or
// an import in the same package (a message, an enum, a top-level enum value, a service).
std::string service_class_name(const google::protobuf::ServiceDescriptor* service);

// The member function of each method, in the service's method order: the rpc's own name,
// with '_' appended while it is a C++ keyword, the class's name, a reserved name
// (kReservedNames) or the final name of an earlier method.
std::vector<std::string> method_function_names(const google::protobuf::ServiceDescriptor* service,
                                               const std::string& class_name);

// What every generated class declares besides its rpc methods, and the names a derived
// class writes unqualified in its overrides: a member "Stream" or "uringrpc" would hide
// uringrpc::Stream or the namespace itself inside every subclass.
extern const char* const kReservedNames[11];

}  // namespace uringrpc::codegen
