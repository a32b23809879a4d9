// Server::set_fallback_handler: methods no service registered reach one raw-bytes handler
// with the path the client called (ctx.method()), in every shape, as a proxy or gateway
// needs; registered methods are untouched; without a fallback such calls get UNIMPLEMENTED.
// The peer is the real gRPC C++ client (generic stub).
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using uringrpc::Bytes;
using uringrpc::Reader;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

class FallbackHandler : public ::testing::Test {
 protected:
  void start(bool with_fallback) {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});
    server_->add_method("/known.Svc/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                          co_return Bytes("known:" + std::string(req.view()));
                        }));
    if (with_fallback) {
      // Bidi over raw bytes: takes every shape. "/stream.*" paths answer "<path>|<x-route>"
      // at once and then echo each message with its index; others answer once, after the
      // client's half-close, "<path>|<x-route>|<messages>".
      server_->set_fallback_handler(uringrpc::bidi_streaming([](Reader<Bytes>& reader, ServerContext& ctx) -> Task<void> {
        std::string head = std::string(ctx.method()) + "|" + std::string(ctx.client_metadata_value("x-route").value_or("-"));
        if (ctx.method().ends_with("/Fail")) ctx.abort(uringrpc::StatusCode::NOT_FOUND, "no route for " + std::string(ctx.method()));
        if (ctx.method().starts_with("/stream.")) {
          co_await ctx.write(Bytes(head));
          int i = 0;
          while (auto m = co_await reader.next()) co_await ctx.write(Bytes(std::to_string(i++) + ":" + std::string(m->view())));
        } else {
          std::string all;
          while (auto m = co_await reader.next()) all += (all.empty() ? "" : ",") + std::string(m->view());
          co_await ctx.write(Bytes(head + "|" + all));
        }
      }));
    }
    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
    channel_ = uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port_));
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  std::unique_ptr<uringrpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  int port_ = 0;
};

TEST_F(FallbackHandler, WithoutOneAnUnknownMethodIsUnimplemented) {
  start(false);
  CallResult r = unary_call(channel_, "/nowhere.Svc/Get", "x");
  EXPECT_EQ(r.code, grpc::StatusCode::UNIMPLEMENTED) << describe(r);
  EXPECT_EQ(r.details, "Method not found: /nowhere.Svc/Get");
  r = unary_call(channel_, "/known.Svc/Echo", "x");
  EXPECT_TRUE(r.ok()) << describe(r);
}

TEST_F(FallbackHandler, UnaryCallToAnUnknownMethodReachesItWithThePath) {
  start(true);
  CallResult r = unary_call(channel_, "/other.pkg.Svc/Get", "payload", std::chrono::seconds(4), {{"x-route", "east"}});
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses, std::vector<std::string>{"/other.pkg.Svc/Get|east|payload"});
  // Any path at all, not only /service/method.
  r = unary_call(channel_, "/a/b/c", "z");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses, std::vector<std::string>{"/a/b/c|-|z"});
  // Registered methods keep their own handler.
  r = unary_call(channel_, "/known.Svc/Echo", "x");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses, std::vector<std::string>{"known:x"});
  // The fallback's status reaches the client.
  r = unary_call(channel_, "/other.pkg.Svc/Fail", "q");
  EXPECT_EQ(r.code, grpc::StatusCode::NOT_FOUND) << describe(r);
  EXPECT_EQ(r.details, "no route for /other.pkg.Svc/Fail");
}

TEST_F(FallbackHandler, StreamingCallsToUnknownMethodsReachItBothWays) {
  start(true);
  StreamingCall call(channel_, "/stream.Svc/Chat");
  EXPECT_EQ(call.read(), "/stream.Svc/Chat|-");
  ASSERT_TRUE(call.write("a"));
  EXPECT_EQ(call.read(), "0:a");
  ASSERT_TRUE(call.write("b"));
  EXPECT_EQ(call.read(), "1:b");
  ASSERT_TRUE(call.writes_done());
  EXPECT_EQ(call.read(), std::nullopt);
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);

  // Client streaming into a non-streaming answer.
  StreamingCall up(channel_, "/up.Svc/Put");
  ASSERT_TRUE(up.write("1"));
  ASSERT_TRUE(up.write("2"));
  ASSERT_TRUE(up.write_last("3"));
  EXPECT_EQ(up.read(), "/up.Svc/Put|-|1,2,3");
  EXPECT_EQ(up.read(), std::nullopt);
  EXPECT_TRUE(up.finish().ok());

  StreamingCall empty(channel_, "/stream.Svc/Nothing");
  ASSERT_TRUE(empty.writes_done());
  EXPECT_EQ(empty.read(), "/stream.Svc/Nothing|-");
  EXPECT_EQ(empty.read(), std::nullopt);
  EXPECT_TRUE(empty.finish().ok());
}

TEST_F(FallbackHandler, SetOnceBeforeStart) {
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  EXPECT_THROW(server.set_fallback_handler({}), std::invalid_argument);
  auto h = uringrpc::unary([](Bytes b, ServerContext&) -> Task<Bytes> { co_return b; });
  server.set_fallback_handler(h);
  EXPECT_THROW(server.set_fallback_handler(h), std::invalid_argument);
  server.add_insecure_port("127.0.0.1:0");
  server.start();
  EXPECT_THROW(server.set_fallback_handler(h), uringrpc::UsageError);
  EXPECT_THROW(server.on_stop_begin([] {}), uringrpc::UsageError);
  server.stop();
}

}  // namespace
