// Flow control seen from a real client, and the TLS handshake deadline: what a peer can
// make the server hold is bounded by what handlers consume and by time.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"
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

TEST(Backpressure, HandlerThatDoesNotReadStopsTheClientOnceWindowAndQueueAreFull) {
  std::atomic<bool> release{false};
  std::atomic<int> read_count{0};
  uringrpc::ServerOptions options;
  options.http2.stream_window_bytes = 256u << 10;  // small, so the bound is quick to reach
  uringrpc::Server server(options);
  server.add_method("/bp.Svc/SlowReader", uringrpc::client_streaming(
      [&](Reader<Bytes>& reader, ServerContext&) -> Task<Bytes> {
        while (!release) co_await uringrpc::sleep_for(10ms);  // holds off reading
        while (auto m = co_await reader.next()) ++read_count;
        co_return Bytes(std::to_string(read_count.load()));
      }));
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();

  StreamingCall call(make_channel("127.0.0.1:" + std::to_string(port)), "/bp.Svc/SlowReader", 20s);
  const std::string chunk(64 << 10, 'w');
  std::atomic<int> written{0};
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    for (int i = 0; i < 400; ++i) {  // 25 MiB offered
      if (!call.write(chunk)) break;
      ++written;
    }
    writer_done = true;
  });
  std::this_thread::sleep_for(1500ms);
  // The server took the stream window plus its read queue (256 KiB each, here) and the
  // client library buffers a little on its side; far less than what was offered.
  int stalled_at = written.load();
  EXPECT_FALSE(writer_done) << "the client was never held back";
  EXPECT_LT(stalled_at, 100) << "the server kept accepting bytes no handler read";
  release = true;  // the handler reads now: the window reopens and the client finishes
  writer.join();
  EXPECT_EQ(written.load(), 400);
  ASSERT_TRUE(call.writes_done());
  auto response = call.read();
  auto r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(*response, "400");
  server.stop();
}

TEST(TlsHandshake, ConnectionThatNeverCompletesTheHandshakeIsClosedAfterTheTimeout) {
  const auto& pki = uringrpc::testing::test_pki();
  uringrpc::ServerOptions options;
  options.connection.handshake_timeout = 300ms;
  uringrpc::Server server(options);
  server.add_method("/bp.Svc/Echo", uringrpc::unary([](Bytes b, ServerContext&) -> Task<Bytes> { co_return b; }));
  int port = server.add_secure_port(
      "127.0.0.1:0", uringrpc::TlsCredentials::from_pem(pki.server_chain_pem, pki.server_key_pem));
  server.start();

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto t0 = std::chrono::steady_clock::now();
  // Send nothing (a slowloris handshake) and wait for the server to hang up.
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the server never closed the silent connection";
  char byte;
  EXPECT_LE(read(fd, &byte, 1), 0) << "expected EOF or reset";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms) << "closed before the timeout";
  close(fd);

  // A real TLS client is still served.
  auto channel = uringrpc::testing::make_tls_channel("127.0.0.1:" + std::to_string(port), pki.ca_cert_pem, "localhost");
  auto r = uringrpc::testing::unary_call(channel, "/bp.Svc/Echo", "hi");
  EXPECT_TRUE(r.ok()) << describe(r);
  server.stop();
}

}  // namespace
