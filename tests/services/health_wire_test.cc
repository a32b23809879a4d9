// The order on the wire when a stop begins with a Watch stream open: the stream's
// NOT_SERVING message leaves before the server's first GOAWAY, with no hook holding the
// stop back. A raw HTTP/2 client (frames by hand, tests/common/h2_frames.h) records every
// frame in arrival order; it acks SETTINGS and PING so the graceful stop can finish.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "../common/h2_frames.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using namespace uringrpc::testing::h2;

class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  void send(const std::string& bytes) { (void)!::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

  // The next frame, or false at EOF or after `limit`.
  bool read(Frame& f, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (size_t n = parse_frame(in_, f)) {
        in_.erase(0, n);
        if (f.type == kSettings && !(f.flags & kAck)) send(frame(kSettings, kAck, 0, ""));
        if (f.type == kPing && !(f.flags & kAck)) send(frame(kPing, kAck, 0, f.payload));
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string in_;
};

// A gRPC message holding HealthCheckResponse{status}: field 1, varint.
std::string response_message(int status) { return grpc_message(std::string{0x08, static_cast<char>(status)}); }

TEST(HealthWire, OpenWatchGetsNotServingBeforeTheFirstGoaway) {
  uringrpc::HealthService health;
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  server.add_service(health);
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();

  RawConnection c(port);
  ASSERT_TRUE(c.connected());
  c.send(client_hello());
  c.send(frame(kHeaders, kEndHeaders, 1, request_block("/grpc.health.v1.Health/Watch")));
  c.send(frame(kData, kEndStream, 1, grpc_message("")));  // HealthCheckRequest{service: ""}
  std::string data;
  Frame f;
  while (data.size() < response_message(1).size() && c.read(f, 5s)) {
    if (f.type == kData && f.stream == 1) data += f.payload;
  }
  ASSERT_EQ(data, response_message(1)) << "no SERVING on the Watch stream";

  std::thread stopper([&] { server.stop(10s); });
  // Every frame until the server closes the connection, in order.
  std::vector<Frame> frames;
  while (c.read(f, 10s)) frames.push_back(f);
  stopper.join();

  int not_serving_at = -1, goaway_at = -1;
  std::string stream_data;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (frames[i].type == kData && frames[i].stream == 1) {
      stream_data += frames[i].payload;
      if (not_serving_at < 0 && stream_data == response_message(2)) not_serving_at = static_cast<int>(i);
    }
    if (frames[i].type == kGoaway && goaway_at < 0) goaway_at = static_cast<int>(i);
  }
  ASSERT_GE(not_serving_at, 0) << "the Watch stream got no NOT_SERVING (" << frames.size() << " frames)";
  ASSERT_GE(goaway_at, 0) << "no GOAWAY";
  EXPECT_LT(not_serving_at, goaway_at) << "the GOAWAY went out before the Watch stream's NOT_SERVING";
}

}  // namespace
