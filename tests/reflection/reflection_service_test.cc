// uringrpc::ReflectionService in this process: what it lists when services are added after
// it, and the misuse register_methods refuses. The real gRPC C++ client asks.
#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "../common/grpc_test_client.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "helloworld.uringrpc.pb.h"
#include "reflection_test.uringrpc.pb.h"
#include "uringrpc/uringrpc.h"

namespace {

namespace v1 = grpc::reflection::v1;

TEST(ReflectionService, ListsServicesAddedAfterItInTheOrderAdded) {
  uringrpc::ReflectionService reflection;
  helloworld::GreeterService greeter;  // nothing overridden: only its descriptor matters
  uringrpc::Server server({.shards = 1});
  server.add_service(reflection);
  server.add_service(greeter);
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  auto stub = v1::ServerReflection::NewStub(uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);
  v1::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  request.set_file_containing_symbol("helloworld.HelloRequest");
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  v1::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  EXPECT_EQ(names, (std::vector<std::string>{"grpc.reflection.v1.ServerReflection",
                                             "grpc.reflection.v1alpha.ServerReflection", "helloworld.Greeter"}));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.file_descriptor_response().file_descriptor_proto_size(), 1) << response.DebugString();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
  server.stop();
  server.wait();
}

TEST(ReflectionService, ServesOneServerOnceAndAServerHasOne) {
  uringrpc::ReflectionService reflection, second;
  uringrpc::Server server({.shards = 1});
  server.add_service(reflection);
  EXPECT_THROW(server.add_service(reflection), std::logic_error);
  EXPECT_THROW(server.add_service(second), std::invalid_argument);
  uringrpc::Server other({.shards = 1});
  EXPECT_THROW(other.add_service(reflection), std::logic_error);
}

// proto/reflection_test.proto: four extensions of Extendable, at file scope and nested.
TEST(ReflectionService, FindsExtensionsDeclaredAtFileScopeAndInsideMessages) {
  uringrpc::ReflectionService reflection;
  uringrpc::reflection_test::ProbeService probe;
  uringrpc::Server server({.shards = 1});
  server.add_service(probe);
  server.add_service(reflection);
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  auto stub = v1::ServerReflection::NewStub(uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);
  auto ask = [&](const v1::ServerReflectionRequest& request) {
    v1::ServerReflectionResponse response;
    EXPECT_TRUE(stream->Write(request));
    EXPECT_TRUE(stream->Read(&response));
    return response;
  };
  v1::ServerReflectionRequest request;
  request.set_all_extension_numbers_of_type("uringrpc.reflection_test.Extendable");
  auto numbers = ask(request).all_extension_numbers_response();
  EXPECT_EQ(numbers.base_type_name(), "uringrpc.reflection_test.Extendable");
  EXPECT_EQ(std::vector<int>(numbers.extension_number().begin(), numbers.extension_number().end()),
            (std::vector<int>{100, 120, 150, 199}));
  for (int n : {100, 120, 150, 199}) {
    request.mutable_file_containing_extension()->set_containing_type("uringrpc.reflection_test.Extendable");
    request.mutable_file_containing_extension()->set_extension_number(n);
    auto response = ask(request);
    ASSERT_EQ(response.file_descriptor_response().file_descriptor_proto_size(), 1) << n << response.DebugString();
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
    EXPECT_EQ(file.name(), "reflection_test.proto");
  }
  for (int n : {99, 101, 200}) {  // inside and outside the extension range, none declared
    request.mutable_file_containing_extension()->set_extension_number(n);
    EXPECT_EQ(ask(request).error_response().error_code(), grpc::StatusCode::NOT_FOUND) << n;
  }
  request.set_file_containing_symbol("uringrpc.reflection_test.Scope.Inner.deep");  // an extension
  EXPECT_EQ(ask(request).file_descriptor_response().file_descriptor_proto_size(), 1);
  request.set_all_extension_numbers_of_type("uringrpc.reflection_test.Scope");  // a type without any
  auto none = ask(request);
  EXPECT_TRUE(none.has_all_extension_numbers_response());
  EXPECT_EQ(none.all_extension_numbers_response().extension_number_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  server.stop();
  server.wait();
}

}  // namespace
