// End-to-end idle trimming with the real gRPC client: once a connection has been quiet for a
// sweep period its shard drops the pages of nghttp2's frame buffer (http2/nghttp2_memory.h),
// and the same connection then serves large responses with many headers unchanged.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "../common/grpc_test_client.h"
#include "http2/nghttp2_memory.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::http2::SessionMemory;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::unary_call;

// Many headers, under the gRPC client's 8 KiB metadata limit (header blocks over a frame-buffer
// chunk are covered by http2_session_test).
constexpr int kHeaders = 40;  // 40 x (name + value + 32) = 5.5 KiB by its count

std::string payload_of(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('0' + i % 71);
  return s;
}

// Waits (bounded) for the sweep to trim at least one more session than `before`.
bool wait_for_trim(uint64_t before) {
  auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    if (SessionMemory::sweep_trims() > before) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(IdleMemory, ConnectionTrimmedWhileIdleKeepsServingLargeResponsesAndManyHeaders) {
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  server.add_method("/e2e.Idle/Big", uringrpc::unary([](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                      for (int i = 0; i < kHeaders; ++i) {
                        ctx.add_initial_metadata("x-h-" + std::to_string(i),
                                                 std::string(100, static_cast<char>('a' + i % 26)));
                      }
                      co_return Bytes(payload_of(std::stoul(std::string(req.view()))));
                    }));
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  auto channel = make_channel("127.0.0.1:" + std::to_string(port));

  for (size_t size : {size_t{64} << 10, size_t{100}, size_t{200} << 10}) {
    SCOPED_TRACE(size);
    uint64_t before = SessionMemory::sweep_trims();
    auto r = unary_call(channel, "/e2e.Idle/Big", std::to_string(size), 10s);
    ASSERT_TRUE(r.ok()) << describe(r);
    ASSERT_EQ(r.responses.size(), 1u);
    EXPECT_TRUE(r.responses[0] == payload_of(size)) << "got " << r.responses[0].size() << " bytes";
    int seen = 0;
    for (auto& [k, v] : r.initial_metadata) {
      if (k.rfind("x-h-", 0) != 0) continue;
      EXPECT_EQ(v, std::string(100, static_cast<char>('a' + std::stoi(k.substr(4)) % 26))) << k;
      ++seen;
    }
    EXPECT_EQ(seen, kHeaders);
    // The same connection goes quiet: the sweep trims it before the next call.
    EXPECT_TRUE(wait_for_trim(before)) << "the idle connection was never trimmed";
  }
  server.stop(1s);
  server.wait();
}

}  // namespace
