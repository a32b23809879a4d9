// Server reflection (uringrpc/reflection.h) through the real gRPC C++ client: stubs that
// grpc_cpp_plugin generates from Debian's reflection.proto, both versions, against
// build/bin/interop-server and build/bin/example-server, and compared with gRPC C++'s own
// reflection server (grpc-cpp-reflection-server) serving the same protos.
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "child_server.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "reflection_test.uringrpc.pb.h"
#include "uringrpc/uringrpc.h"

namespace {

using uringrpc::reflection_test::ChildServer;

struct V1 {
  using Service = grpc::reflection::v1::ServerReflection;
  using Request = grpc::reflection::v1::ServerReflectionRequest;
  using Response = grpc::reflection::v1::ServerReflectionResponse;
};
struct V1alpha {
  using Service = grpc::reflection::v1alpha::ServerReflection;
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;
};

// The servers, started once for the whole binary (each takes a few hundred ms).
struct Servers {
  ChildServer interop{"bin/interop-server", {"--port", "0", "--shards", "2"}};
  ChildServer greeter{"bin/example-server", {"--port", "0", "--shards", "1"}};
  ChildServer grpc_interop{"tests/bin/grpc-cpp-reflection-server", {"interop"}};
  ChildServer grpc_greeter{"tests/bin/grpc-cpp-reflection-server", {"greeter"}};
};
Servers& servers() {
  static Servers s;
  return s;
}

// Sends every request on one ServerReflectionInfo stream, then reads every response.
template <class V>
std::vector<typename V::Response> ask(const std::string& address, const std::vector<typename V::Request>& requests) {
  auto stub = V::Service::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->ServerReflectionInfo(&context);
  for (const auto& r : requests) EXPECT_TRUE(stream->Write(r));
  stream->WritesDone();
  std::vector<typename V::Response> out;
  typename V::Response response;
  while (stream->Read(&response)) out.push_back(response);
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(out.size(), requests.size()) << "one response per request";
  return out;
}

template <class V>
typename V::Response ask_one(const std::string& address, const typename V::Request& request) {
  auto all = ask<V>(address, {request});
  return all.empty() ? typename V::Response() : all[0];
}

template <class V>
typename V::Request by_filename(const std::string& name) {
  typename V::Request r;
  r.set_file_by_filename(name);
  return r;
}
template <class V>
typename V::Request by_symbol(const std::string& symbol) {
  typename V::Request r;
  r.set_file_containing_symbol(symbol);
  return r;
}
template <class V>
typename V::Request list_services() {
  typename V::Request r;
  r.set_list_services("*");
  return r;
}

// The names of the files of a file_descriptor_response, in order.
template <class Response>
std::vector<std::string> file_names(const Response& response) {
  std::vector<std::string> names;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    EXPECT_TRUE(file.ParseFromString(bytes));
    names.push_back(file.name());
  }
  return names;
}

template <class Response>
std::set<std::string> service_names(const Response& response) {
  std::set<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.insert(s.name());
  return names;
}

template <class V>
class Reflection : public ::testing::Test {};
using Versions = ::testing::Types<V1, V1alpha>;
class VersionName {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, V1> ? "v1" : "v1alpha";
  }
};
TYPED_TEST_SUITE(Reflection, Versions, VersionName);

TYPED_TEST(Reflection, ListsTheInteropServicesAndBothReflectionVersions) {
  auto response = ask_one<TypeParam>(servers().interop.address(), list_services<TypeParam>());
  ASSERT_TRUE(response.has_list_services_response()) << response.DebugString();
  EXPECT_EQ(service_names(response),
            (std::set<std::string>{"grpc.testing.TestService", "grpc.testing.UnimplementedService",
                                   "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}));
  EXPECT_EQ(response.original_request().list_services(), "*");
}

TYPED_TEST(Reflection, ListsAndDescribesTheGreeter) {
  const std::string address = servers().greeter.address();
  auto list = ask_one<TypeParam>(address, list_services<TypeParam>());
  EXPECT_EQ(service_names(list), (std::set<std::string>{"helloworld.Greeter", "grpc.reflection.v1.ServerReflection",
                                                        "grpc.reflection.v1alpha.ServerReflection"}));
  auto file = ask_one<TypeParam>(address, by_symbol<TypeParam>("helloworld.Greeter"));
  ASSERT_EQ(file_names(file), std::vector<std::string>{"helloworld.proto"}) << file.DebugString();
  google::protobuf::FileDescriptorProto proto;
  ASSERT_TRUE(proto.ParseFromString(file.file_descriptor_response().file_descriptor_proto(0)));
  ASSERT_EQ(proto.service_size(), 1);
  EXPECT_EQ(proto.service(0).name(), "Greeter");
  ASSERT_EQ(proto.service(0).method_size(), 2);
  EXPECT_EQ(proto.service(0).method(0).name(), "SayHello");
  EXPECT_EQ(proto.service(0).method(0).input_type(), ".helloworld.HelloRequest");
  EXPECT_EQ(proto.service(0).method(1).name(), "SayHelloStream");
  EXPECT_TRUE(proto.service(0).method(1).server_streaming());
}

TYPED_TEST(Reflection, FileByFilenameSendsTheFileThenEachDependencyOnce) {
  auto response = ask_one<TypeParam>(servers().interop.address(), by_filename<TypeParam>("grpc/testing/test.proto"));
  // test.proto imports empty.proto and messages.proto (which imports nothing of these).
  EXPECT_EQ(file_names(response), (std::vector<std::string>{"grpc/testing/test.proto", "grpc/testing/empty.proto",
                                                            "grpc/testing/messages.proto"}));
  auto leaf = ask_one<TypeParam>(servers().interop.address(), by_filename<TypeParam>("grpc/testing/empty.proto"));
  EXPECT_EQ(file_names(leaf), std::vector<std::string>{"grpc/testing/empty.proto"});
}

TYPED_TEST(Reflection, FileContainingSymbolFindsEveryKindOfSymbol) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"grpc.testing.TestService", "grpc/testing/test.proto"},                        // service
      {"grpc.testing.TestService.StreamingOutputCall", "grpc/testing/test.proto"},    // method
      {"grpc.testing.SimpleRequest", "grpc/testing/messages.proto"},                  // message
      {"grpc.testing.SimpleRequest.response_size", "grpc/testing/messages.proto"},    // field
      {"grpc.testing.PayloadType", "grpc/testing/messages.proto"},                    // enum
      {"grpc.testing.COMPRESSABLE", "grpc/testing/messages.proto"},                   // enum value
      {"grpc.testing.LoadBalancerStatsResponse.RpcsByPeer", "grpc/testing/messages.proto"},  // nested
      {"grpc.testing.Empty", "grpc/testing/empty.proto"},
      {"grpc.reflection.v1alpha.ServerReflectionRequest", "grpc/reflection/v1alpha/reflection.proto"},
  };
  std::vector<typename TypeParam::Request> requests;
  for (const auto& [symbol, file] : cases) requests.push_back(by_symbol<TypeParam>(symbol));
  auto responses = ask<TypeParam>(servers().interop.address(), requests);
  ASSERT_EQ(responses.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    // In order: each response answers the request at the same place.
    EXPECT_EQ(responses[i].original_request().file_containing_symbol(), cases[i].first);
    auto names = file_names(responses[i]);
    ASSERT_FALSE(names.empty()) << cases[i].first << ": " << responses[i].DebugString();
    EXPECT_EQ(names[0], cases[i].second) << cases[i].first;
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size()) << "a file sent twice";
  }
}

TYPED_TEST(Reflection, UnknownNamesGetNotFoundAndTheStreamGoesOn) {
  std::vector<typename TypeParam::Request> requests = {by_filename<TypeParam>("nope.proto"),
                                                       by_symbol<TypeParam>("grpc.testing.Nope"),
                                                       by_symbol<TypeParam>("grpc.testing.SimpleRequest.nope")};
  typename TypeParam::Request r;
  r.set_all_extension_numbers_of_type("grpc.testing.Nope");
  requests.push_back(r);
  r.mutable_file_containing_extension()->set_containing_type("grpc.testing.SimpleRequest");
  r.mutable_file_containing_extension()->set_extension_number(1000);
  requests.push_back(r);
  r.mutable_file_containing_extension()->set_containing_type("grpc.testing.Nope");
  requests.push_back(r);
  // google/protobuf/descriptor.proto is linked into the server but none of its services uses
  // it: it is not served (gRPC C++ would send every file linked in).
  requests.push_back(by_filename<TypeParam>("google/protobuf/descriptor.proto"));
  requests.push_back(by_filename<TypeParam>("grpc/testing/empty.proto"));  // still answers
  auto responses = ask<TypeParam>(servers().interop.address(), requests);
  ASSERT_EQ(responses.size(), requests.size());
  for (size_t i = 0; i + 1 < responses.size(); ++i) {
    EXPECT_EQ(responses[i].error_response().error_code(), grpc::StatusCode::NOT_FOUND) << i << ": "
                                                                                      << responses[i].DebugString();
    EXPECT_FALSE(responses[i].error_response().error_message().empty());
    EXPECT_EQ(responses[i].original_request().SerializeAsString(), requests[i].SerializeAsString());
  }
  EXPECT_EQ(file_names(responses.back()), std::vector<std::string>{"grpc/testing/empty.proto"});
}

TYPED_TEST(Reflection, AllExtensionNumbersOfAKnownTypeWithoutExtensionsIsEmpty) {
  typename TypeParam::Request r;
  r.set_all_extension_numbers_of_type("grpc.testing.SimpleRequest");
  auto response = ask_one<TypeParam>(servers().interop.address(), r);
  ASSERT_TRUE(response.has_all_extension_numbers_response()) << response.DebugString();
  EXPECT_EQ(response.all_extension_numbers_response().base_type_name(), "grpc.testing.SimpleRequest");
  EXPECT_EQ(response.all_extension_numbers_response().extension_number_size(), 0);
}

TYPED_TEST(Reflection, ARequestWithNothingSetIsUnimplemented) {
  typename TypeParam::Request r;
  r.set_host("example");
  auto response = ask_one<TypeParam>(servers().interop.address(), r);
  EXPECT_EQ(response.error_response().error_code(), grpc::StatusCode::UNIMPLEMENTED) << response.DebugString();
  EXPECT_EQ(response.valid_host(), "example");
}

// Ours against gRPC C++'s (v1alpha only in Debian's 1.51) for the same services: the same
// bytes for every file answer, the same error codes, the same services but our v1.
std::vector<V1alpha::Request> comparable_requests(const std::string& which) {
  std::vector<V1alpha::Request> out;
  if (which == "extensions") {
    V1alpha::Request r;
    for (const char* type : {"uringrpc.reflection_test.Extendable", "uringrpc.reflection_test.Scope", "nope.Nope"}) {
      r.set_all_extension_numbers_of_type(type);
      out.push_back(r);
    }
    for (int n : {100, 120, 150, 199, 101}) {
      r.mutable_file_containing_extension()->set_containing_type("uringrpc.reflection_test.Extendable");
      r.mutable_file_containing_extension()->set_extension_number(n);
      out.push_back(r);
    }
    for (const char* s : {"uringrpc.reflection_test.Scope.flag", "uringrpc.reflection_test.note",
                          "uringrpc.reflection_test.Scope.Inner.deep", "uringrpc.reflection_test.Probe.Get"}) {
      out.push_back(by_symbol<V1alpha>(s));
    }
  } else if (which == "greeter") {
    for (const char* s : {"helloworld.Greeter", "helloworld.Greeter.SayHelloStream", "helloworld.HelloReply",
                          "helloworld.HelloRequest.name", "helloworld.Nope"}) {
      out.push_back(by_symbol<V1alpha>(s));
    }
    out.push_back(by_filename<V1alpha>("helloworld.proto"));
  } else {
    for (const char* s : {"grpc.testing.TestService", "grpc.testing.UnimplementedService.UnimplementedCall",
                          "grpc.testing.StreamingOutputCallRequest", "grpc.testing.GrpclbRouteType",
                          "grpc.testing.ClientConfigureRequest.Metadata", "grpc.testing.Nope", ""}) {
      out.push_back(by_symbol<V1alpha>(s));
    }
    for (const char* f : {"grpc/testing/test.proto", "grpc/testing/messages.proto", "missing.proto"}) {
      out.push_back(by_filename<V1alpha>(f));
    }
    V1alpha::Request r;
    r.set_all_extension_numbers_of_type("grpc.testing.Payload");
    out.push_back(r);
    r.set_all_extension_numbers_of_type("grpc.testing.Missing");
    out.push_back(r);
    r.mutable_file_containing_extension()->set_containing_type("grpc.testing.Payload");
    r.mutable_file_containing_extension()->set_extension_number(77);
    out.push_back(r);
  }
  // Not compared: the reflection service's own file, which gRPC C++ names after its source
  // tree ("src/proto/grpc/reflection/v1alpha/reflection.proto"; ours is Debian's grpc-proto).
  return out;
}

void expect_same_answers(const std::string& ours, const std::string& theirs, const std::string& which) {
  // One stream per request: gRPC C++ 1.51 keeps appending the files of earlier requests of
  // a stream to each later file answer (its response object is reused uncleared), where we
  // send each answer's own files only (FileContainingSymbolFindsEveryKindOfSymbol).
  auto requests = comparable_requests(which);
  std::vector<V1alpha::Response> a, b;
  for (const auto& r : requests) {
    a.push_back(ask_one<V1alpha>(ours, r));
    b.push_back(ask_one<V1alpha>(theirs, r));
  }
  ASSERT_EQ(a.size(), requests.size());
  ASSERT_EQ(b.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(requests[i].ShortDebugString());
    EXPECT_EQ(a[i].message_response_case(), b[i].message_response_case()) << a[i].DebugString() << b[i].DebugString();
    EXPECT_EQ(a[i].original_request().SerializeAsString(), b[i].original_request().SerializeAsString());
    EXPECT_EQ(a[i].error_response().error_code(), b[i].error_response().error_code());
    EXPECT_EQ(file_names(a[i]), file_names(b[i]));
    EXPECT_EQ(a[i].file_descriptor_response().SerializeAsString(), b[i].file_descriptor_response().SerializeAsString());
    EXPECT_EQ(a[i].all_extension_numbers_response().SerializeAsString(),
              b[i].all_extension_numbers_response().SerializeAsString());
  }
  auto our_list = service_names(ask_one<V1alpha>(ours, list_services<V1alpha>()));
  auto their_list = service_names(ask_one<V1alpha>(theirs, list_services<V1alpha>()));
  EXPECT_EQ(our_list.erase("grpc.reflection.v1.ServerReflection"), 1u);
  EXPECT_EQ(our_list, their_list);
}

TEST(ReflectionMatchesGrpcCpp, InteropServices) {
  expect_same_answers(servers().interop.address(), servers().grpc_interop.address(), "interop");
}

TEST(ReflectionMatchesGrpcCpp, Greeter) {
  expect_same_answers(servers().greeter.address(), servers().grpc_greeter.address(), "greeter");
}

// Extensions at file scope and nested (proto/reflection_test.proto), from a uringrpc server in
// this process.
TEST(ReflectionMatchesGrpcCpp, Extensions) {
  uringrpc::ReflectionService reflection;
  uringrpc::reflection_test::ProbeService probe;
  uringrpc::Server server({.shards = 1});
  server.add_service(probe);
  server.add_service(reflection);
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  ChildServer theirs("tests/bin/grpc-cpp-reflection-server", {"extensions"});
  expect_same_answers("127.0.0.1:" + std::to_string(port), theirs.address(), "extensions");
  server.stop();
  server.wait();
}

}  // namespace
