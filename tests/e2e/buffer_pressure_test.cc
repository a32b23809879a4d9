// The shard's receive-buffer ring under pressure, with the real gRPC client: a ring far
// too small for the traffic (receives end with -ENOBUFS and are re-armed when buffers
// come back) and handlers slow to read must lose no byte and stall no connection.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::Reader;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

// Message i of a call is 1000 bytes derived from (call, i): any lost, duplicated or
// reordered byte shows. Several fit in one receive buffer, so queued ones pin buffers.
std::string message(int call, int i) {
  std::string m(1000, '\0');
  for (size_t k = 0; k < m.size(); ++k) m[k] = static_cast<char>((call * 131 + i * 31 + k) & 0xff);
  return m;
}

TEST(BufferPressure, TinyReceiveRingAndSlowReadersLoseNoBytes) {
  uringrpc::ServerOptions options;
  options.shards = 1;
  options.loop.recv_buffer_count = 8;  // 8 x 4 KiB for 8 connections sending 500 KB each
  options.loop.recv_buffer_bytes = 4096;
  uringrpc::Server server(options);
  server.add_method("/bp.Svc/Check", uringrpc::client_streaming([](Reader<Bytes>& reader, ServerContext& ctx)
                                                                    -> Task<Bytes> {
    int call = std::stoi(std::string(ctx.client_metadata_value("call").value_or("0")));
    co_await uringrpc::sleep_for(300ms);  // let messages pile up unread first
    int i = 0;
    while (auto m = co_await reader.next()) {
      if (m->view() != message(call, i)) co_return Bytes("corrupt at message " + std::to_string(i));
      ++i;
    }
    co_return Bytes("ok " + std::to_string(i));
  }));
  server.add_method("/bp.Svc/Echo", uringrpc::unary([](Bytes b, ServerContext&) -> Task<Bytes> { co_return b; }));
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  const std::string target = "127.0.0.1:" + std::to_string(port);

  constexpr int kCalls = 8, kMessages = 500;
  std::vector<std::future<std::string>> results;
  for (int c = 0; c < kCalls; ++c) {
    results.push_back(std::async(std::launch::async, [&, c] {
      StreamingCall call(make_channel(target), "/bp.Svc/Check", 60s, {{"call", std::to_string(c)}});
      for (int i = 0; i < kMessages; ++i) {
        if (!call.write(message(c, i))) return std::string("write failed at ") + std::to_string(i);
      }
      call.writes_done();
      auto reply = call.read();
      auto r = call.finish();
      return r.ok() ? reply.value_or("no reply") : describe(r);
    }));
  }
  // Meanwhile a plain call on its own connection is still served.
  auto echo = unary_call(make_channel(target), "/bp.Svc/Echo", "still here", 30s);
  EXPECT_TRUE(echo.ok()) << describe(echo);
  for (int c = 0; c < kCalls; ++c) {
    EXPECT_EQ(results[c].get(), "ok " + std::to_string(kMessages)) << "call " << c;
  }
}

}  // namespace
