// ServerContext::authority() and user_agent() with the real gRPC C++ client: the target it
// dialed or its GRPC_ARG_DEFAULT_AUTHORITY, and its "grpc-c++/..." user-agent (with a primary
// user-agent string in front when the channel sets one).
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::unary_call;

class RequestIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});
    // Answers "<authority>\n<user-agent>\n<user-agent from client_metadata>".
    server_->add_method("/e2e.Identity/Show", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          std::string out(ctx.authority());
                          out += '\n';
                          out += ctx.user_agent();
                          out += '\n';
                          out += ctx.client_metadata_value("user-agent").value_or("<none>");
                          co_return Bytes(std::move(out));
                        }));
    port_ = server_->add_insecure_port("127.0.0.1:0");
    ASSERT_GT(port_, 0);
    server_->start();
  }
  void TearDown() override { server_->stop(); }

  // {authority, user_agent, user-agent as metadata}
  std::array<std::string, 3> show(const std::shared_ptr<grpc::Channel>& channel) {
    CallResult r = unary_call(channel, "/e2e.Identity/Show", "", 5s);
    EXPECT_TRUE(r.ok()) << describe(r);
    if (!r.ok() || r.responses.size() != 1) return {};
    const std::string& s = r.responses[0];
    size_t a = s.find('\n'), b = s.find('\n', a + 1);
    return {s.substr(0, a), s.substr(a + 1, b - a - 1), s.substr(b + 1)};
  }

  std::shared_ptr<grpc::Channel> channel_with(grpc::ChannelArguments args) {
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(target(), grpc::InsecureChannelCredentials(), args);
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
};

TEST_F(RequestIdentity, AuthorityIsTheTargetTheClientDialedAndUserAgentIsGrpcCpp) {
  auto [authority, user_agent, metadata_agent] = show(make_channel(target()));
  EXPECT_EQ(authority, target());
  EXPECT_EQ(user_agent.rfind("grpc-c++/", 0), 0u) << user_agent;
  EXPECT_EQ(user_agent, metadata_agent);
}

TEST_F(RequestIdentity, AuthorityIsTheChannelsDefaultAuthorityWhenSet) {
  grpc::ChannelArguments args;
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "api.example.test:8443");
  auto [authority, user_agent, metadata_agent] = show(channel_with(args));
  EXPECT_EQ(authority, "api.example.test:8443");
  EXPECT_EQ(user_agent.rfind("grpc-c++/", 0), 0u) << user_agent;
}

TEST_F(RequestIdentity, UserAgentStartsWithTheChannelsPrimaryUserAgent) {
  grpc::ChannelArguments args;
  args.SetUserAgentPrefix("greeter-cli/2.1");
  auto [authority, user_agent, metadata_agent] = show(channel_with(args));
  EXPECT_EQ(user_agent.rfind("greeter-cli/2.1 grpc-c++/", 0), 0u) << user_agent;
  EXPECT_EQ(authority, target());
}

// A long authority does not fit the string's own storage; it must come through whole, and
// each call must see its own (calls of two channels on one shard, one after another).
TEST_F(RequestIdentity, LongAuthorityComesThroughWhole) {
  const std::string long_name = std::string(200, 'a') + ".example.test";
  grpc::ChannelArguments args;
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, long_name);
  auto long_channel = channel_with(args);
  auto plain_channel = make_channel(target());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(show(long_channel)[0], long_name);
    EXPECT_EQ(show(plain_channel)[0], target());
  }
}

}  // namespace
