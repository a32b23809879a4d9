// The send block a connection borrows for each sendmsg (transport/connection.h: the msghdr
// and its iovecs, returned when the send completes, so that an idle connection holds none):
// output of a few pieces (the small block), of thousands in one go (the kMaxIov block, many
// sendmsg calls, partial sends once the socket buffer fills), and small again afterwards on
// the same connection, every byte in order.
#include <gtest/gtest.h>

#include <string>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

std::string message(int i) { return "m" + std::to_string(i) + std::string(static_cast<size_t>(i % 97), 'x'); }

TEST(SendBatch, SmallThenThousandsOfPiecesThenSmallAgainOnOneConnection) {
  constexpr int kMessages = 3000;  // two pieces each (frame header, payload by reference)
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  server.add_method("/sb.Svc/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> { co_return req; }));
  server.add_method("/sb.Svc/Many", uringrpc::server_streaming([](Bytes, ServerContext& ctx) -> Task<void> {
                      for (int i = 0; i < kMessages; ++i) co_await ctx.write(Bytes(message(i)));
                    }));
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  auto channel = make_channel("127.0.0.1:" + std::to_string(port));

  auto r = unary_call(channel, "/sb.Svc/Echo", "before");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "before");
  for (int round = 0; round < 2; ++round) {
    StreamingCall call(channel, "/sb.Svc/Many", std::chrono::seconds(10));
    ASSERT_TRUE(call.write_last(""));
    while (call.read()) {
    }
    auto done = call.finish();
    ASSERT_TRUE(done.ok()) << describe(done);
    ASSERT_EQ(done.responses.size(), static_cast<size_t>(kMessages));
    for (int i = 0; i < kMessages; ++i) ASSERT_EQ(done.responses[i], message(i)) << i;
    r = unary_call(channel, "/sb.Svc/Echo", "after " + std::to_string(round));
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(r.responses.at(0), "after " + std::to_string(round));
  }
  server.stop();
}

}  // namespace
