// Handlers that end their RPC by returning a Status (`co_return uringrpc::Status{...}`)
// instead of a response, seen by the real gRPC C++ client: unary and client-streaming,
// raw bytes and protobuf, with the trailing metadata set on the context.
#include <gtest/gtest.h>
#include <uringrpc/protobuf.h>

#include <chrono>
#include <memory>
#include <string>

#include "../common/grpc_test_client.h"
#include "helloworld.pb.h"
#include "uringrpc/uringrpc.h"

namespace {

using uringrpc::Bytes;
using uringrpc::Reader;
using uringrpc::ServerContext;
using uringrpc::Status;
using uringrpc::StatusCode;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

// A helper a handler awaits for its value: when it ends with a Status, so does the RPC.
Task<std::string> lookup(std::string name) {
  if (name != "ada") co_return Status{StatusCode::NOT_FOUND, "no user " + name};
  co_return "Ada Lovelace";
}

class ReturnedStatusE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});

    server_->add_method("/e2e.Status/Get", uringrpc::unary([](std::string name, ServerContext& ctx) -> Task<std::string> {
                          if (name.empty()) {
                            ctx.set_trailing_metadata({{"x-why", "empty name"}});
                            co_return Status{StatusCode::NOT_FOUND, "no such user"};
                          }
                          co_return "user " + name;
                        }));

    server_->add_method("/e2e.Status/Ok", uringrpc::unary([](Bytes, ServerContext&) -> Task<Bytes> {
                          co_return Status{};  // OK, but no response: the handler's mistake
                        }));

    // The Status wins over what set_code/set_details said before.
    server_->add_method("/e2e.Status/Override", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          ctx.set_code(StatusCode::ABORTED);
                          ctx.set_details("earlier");
                          co_return Status{StatusCode::PERMISSION_DENIED, "later"};
                        }));

    server_->add_method("/e2e.Status/Nested", uringrpc::unary([](std::string name, ServerContext&) -> Task<std::string> {
                          std::string full = co_await lookup(name);
                          co_return "found " + full;
                        }));

    server_->add_method("/e2e.Status/Sum",
                        uringrpc::client_streaming([](Reader<std::string>& reader, ServerContext& ctx) -> Task<std::string> {
                          int n = 0;
                          while (auto r = co_await reader.next()) {
                            if (*r == "bad") {
                              ctx.set_trailing_metadata({{"x-seen", std::to_string(n)}});
                              co_return Status{StatusCode::INVALID_ARGUMENT, "bad message after " + std::to_string(n)};
                            }
                            ++n;
                          }
                          co_return std::to_string(n) + " messages";
                        }));

    server_->add_method("/helloworld.Greeter/SayHello",
                        uringrpc::unary([](helloworld::HelloRequest req, ServerContext& ctx) -> Task<helloworld::HelloReply> {
                          if (req.name().empty()) {
                            ctx.set_trailing_metadata({{"x-field-bin", std::string("name\0", 5)}});
                            co_return Status{StatusCode::INVALID_ARGUMENT, "name is required"};
                          }
                          helloworld::HelloReply reply;
                          reply.set_message("Hello " + req.name());
                          co_return reply;
                        }));

    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
    channel_ = make_channel("127.0.0.1:" + std::to_string(port_));
  }

  void TearDown() override { server_->stop(std::chrono::seconds(1)); }

  static std::string hello_request(const std::string& name) {
    helloworld::HelloRequest req;
    req.set_name(name);
    return req.SerializeAsString();
  }

  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ReturnedStatusE2e, UnaryHandlerReturningStatusEndsRpcWithItsCodeDetailsAndTrailers) {
  CallResult r = unary_call(channel_, "/e2e.Status/Get", "");
  EXPECT_EQ(r.code, grpc::StatusCode::NOT_FOUND) << describe(r);
  EXPECT_EQ(r.details, "no such user");
  EXPECT_TRUE(r.responses.empty());
  auto it = r.trailers.find("x-why");
  ASSERT_NE(it, r.trailers.end());
  EXPECT_EQ(it->second, "empty name");

  CallResult ok = unary_call(channel_, "/e2e.Status/Get", "ada");
  ASSERT_TRUE(ok.ok()) << describe(ok);
  ASSERT_EQ(ok.responses.size(), 1u);
  EXPECT_EQ(ok.responses[0], "user ada");
}

TEST_F(ReturnedStatusE2e, OkStatusWithoutResponseReachesClientAsInternal) {
  CallResult r = unary_call(channel_, "/e2e.Status/Ok", "x");
  EXPECT_EQ(r.code, grpc::StatusCode::INTERNAL) << describe(r);
  EXPECT_EQ(r.details, "the handler returned an OK Status instead of a response");
  EXPECT_TRUE(r.responses.empty());
}

TEST_F(ReturnedStatusE2e, ReturnedStatusReplacesCodeAndDetailsSetOnContext) {
  CallResult r = unary_call(channel_, "/e2e.Status/Override", "x");
  EXPECT_EQ(r.code, grpc::StatusCode::PERMISSION_DENIED) << describe(r);
  EXPECT_EQ(r.details, "later");
}

TEST_F(ReturnedStatusE2e, AwaitedTaskEndingWithStatusEndsTheRpc) {
  CallResult r = unary_call(channel_, "/e2e.Status/Nested", "bob");
  EXPECT_EQ(r.code, grpc::StatusCode::NOT_FOUND) << describe(r);
  EXPECT_EQ(r.details, "no user bob");

  CallResult ok = unary_call(channel_, "/e2e.Status/Nested", "ada");
  ASSERT_TRUE(ok.ok()) << describe(ok);
  ASSERT_EQ(ok.responses.size(), 1u);
  EXPECT_EQ(ok.responses[0], "found Ada Lovelace");
}

TEST_F(ReturnedStatusE2e, ClientStreamingHandlerReturningStatusEndsRpcWithIt) {
  StreamingCall call(channel_, "/e2e.Status/Sum");
  ASSERT_TRUE(call.write("a"));
  ASSERT_TRUE(call.write("b"));
  call.write_last("bad");  // the server may already have ended the call
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::INVALID_ARGUMENT) << describe(r);
  EXPECT_EQ(r.details, "bad message after 2");
  EXPECT_TRUE(r.responses.empty());
  auto it = r.trailers.find("x-seen");
  ASSERT_NE(it, r.trailers.end());
  EXPECT_EQ(it->second, "2");

  StreamingCall good(channel_, "/e2e.Status/Sum");
  ASSERT_TRUE(good.write("a"));
  ASSERT_TRUE(good.write_last("b"));
  auto resp = good.read();
  ASSERT_TRUE(resp);
  EXPECT_EQ(*resp, "2 messages");
  CallResult ok = good.finish();
  ASSERT_TRUE(ok.ok()) << describe(ok);
}

TEST_F(ReturnedStatusE2e, ProtobufHandlerReturningStatusEndsRpcWithIt) {
  CallResult r = unary_call(channel_, "/helloworld.Greeter/SayHello", hello_request(""));
  EXPECT_EQ(r.code, grpc::StatusCode::INVALID_ARGUMENT) << describe(r);
  EXPECT_EQ(r.details, "name is required");
  EXPECT_TRUE(r.responses.empty());
  auto it = r.trailers.find("x-field-bin");
  ASSERT_NE(it, r.trailers.end());
  EXPECT_EQ(it->second, std::string("name\0", 5));

  CallResult ok = unary_call(channel_, "/helloworld.Greeter/SayHello", hello_request("ada"));
  ASSERT_TRUE(ok.ok()) << describe(ok);
  ASSERT_EQ(ok.responses.size(), 1u);
  helloworld::HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(ok.responses[0]));
  EXPECT_EQ(reply.message(), "Hello ada");
}

}  // namespace
