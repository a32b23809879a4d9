// ServerOptions::metrics: after real gRPC C++ client calls, Server::metrics_text() and
// GET /metrics over a real TCP socket (libmicrohttpd) show the exact counts per method and
// code, messages each way, the latency histogram and the connections; unknown methods stay
// one series; metrics off means no text at all.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

// One HTTP/1.0 request over a plain socket; the whole response, head and body.
std::string http_get(int port, const std::string& path, const std::string& method = "GET") {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("connect to the metrics port failed");
  }
  std::string req = method + " " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    throw std::runtime_error("send");
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// "200" of "HTTP/1.1 200 OK\r\n..." (libmicrohttpd answers HTTP/1.1 to an HTTP/1.0 request).
std::string status_of(const std::string& response) {
  return response.starts_with("HTTP/1.") && response.size() >= 12 ? response.substr(9, 3) : "none: " + response;
}

class Metrics : public ::testing::Test {
 protected:
  void start(bool fallback = false) {
    uringrpc::ServerOptions options{.shards = 2};
    options.metrics.enabled = true;
    options.metrics.listen = "127.0.0.1:0";
    server_ = std::make_unique<uringrpc::Server>(options);
    server_->add_method("/test.Svc/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                          co_return req;
                        }));
    server_->add_method("/test.Svc/Missing", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          ctx.abort(uringrpc::StatusCode::NOT_FOUND, "no such thing");
                          co_return Bytes();
                        }));
    server_->add_method("/test.Svc/Three", uringrpc::server_streaming([](Bytes req, ServerContext& ctx) -> Task<void> {
                          for (int i = 0; i < 3; ++i) co_await ctx.write(req);
                        }));
    if (fallback) {
      server_->set_fallback_handler(uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> { co_return req; }));
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

const std::string kEcho = "grpc_type=\"unary\",grpc_service=\"test.Svc\",grpc_method=\"Echo\"";
const std::string kMissing = "grpc_type=\"unary\",grpc_service=\"test.Svc\",grpc_method=\"Missing\"";
const std::string kThree = "grpc_type=\"server_stream\",grpc_service=\"test.Svc\",grpc_method=\"Three\"";

TEST_F(Metrics, TextHasTheExactCountsOfOkAndErrorCalls) {
  start();
  constexpr int kOk = 7, kErrors = 3;
  for (int i = 0; i < kOk; ++i) {
    CallResult r = unary_call(channel_, "/test.Svc/Echo", "hello");  // 5 + 5 framed bytes
    ASSERT_TRUE(r.ok()) << describe(r);
  }
  for (int i = 0; i < kErrors; ++i) {
    CallResult r = unary_call(channel_, "/test.Svc/Missing", "x");
    ASSERT_EQ(r.code, grpc::StatusCode::NOT_FOUND) << describe(r);
  }
  StreamingCall s(channel_, "/test.Svc/Three");
  ASSERT_TRUE(s.write_last("abc"));
  while (s.read()) {
  }
  CallResult sr = s.finish();
  ASSERT_TRUE(sr.ok()) << describe(sr);
  ASSERT_EQ(sr.responses.size(), 3u);

  const std::string text = server_->metrics_text();
  EXPECT_TRUE(has_line(text, "grpc_server_started_total{" + kEcho + "} 7")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + kEcho + ",grpc_code=\"OK\"} 7")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + kEcho + ",grpc_code=\"NotFound\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_msg_received_total{" + kEcho + "} 7")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_msg_sent_total{" + kEcho + "} 7")) << text;
  EXPECT_TRUE(has_line(text, "uringrpc_server_received_bytes_total{" + kEcho + "} 70")) << text;
  EXPECT_TRUE(has_line(text, "uringrpc_server_sent_bytes_total{" + kEcho + "} 70")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_count{" + kEcho + "} 7")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_bucket{" + kEcho + ",le=\"+Inf\"} 7")) << text;

  EXPECT_TRUE(has_line(text, "grpc_server_started_total{" + kMissing + "} 3")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + kMissing + ",grpc_code=\"NotFound\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + kMissing + ",grpc_code=\"OK\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_msg_sent_total{" + kMissing + "} 0")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_count{" + kMissing + "} 3")) << text;

  EXPECT_TRUE(has_line(text, "grpc_server_started_total{" + kThree + "} 1")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_msg_received_total{" + kThree + "} 1")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_msg_sent_total{" + kThree + "} 3")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + kThree + ",grpc_code=\"OK\"} 1")) << text;

  // One channel, one connection, still open.
  EXPECT_TRUE(has_line(text, "uringrpc_server_connections_accepted_total 1")) << text;
  EXPECT_TRUE(has_line(text, "uringrpc_server_connections 1")) << text;
}

TEST_F(Metrics, GetMetricsOverHttpServesTheSameText) {
  start();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(unary_call(channel_, "/test.Svc/Echo", "x").ok());
  ASSERT_GT(server_->metrics_port(), 0);
  const std::string response = http_get(server_->metrics_port(), "/metrics");
  ASSERT_EQ(status_of(response), "200") << response;
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << response;
  const size_t body = response.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  const std::string text = response.substr(body + 4);
  EXPECT_TRUE(text.starts_with("# HELP grpc_server_started_total ")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE grpc_server_handled_total counter")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + kEcho + ",grpc_code=\"OK\"} 4")) << text;
  EXPECT_EQ(text, server_->metrics_text());  // nothing ran in between

  EXPECT_EQ(status_of(http_get(server_->metrics_port(), "/other")), "404");
  EXPECT_EQ(status_of(http_get(server_->metrics_port(), "/metrics", "POST")), "405");
}

TEST_F(Metrics, ConnectionsGaugeFallsWhenAClientGoesAway) {
  start();
  {
    auto other = uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port_));
    ASSERT_TRUE(unary_call(other, "/test.Svc/Echo", "x").ok());
    ASSERT_TRUE(unary_call(channel_, "/test.Svc/Echo", "x").ok());
    EXPECT_TRUE(has_line(server_->metrics_text(), "uringrpc_server_connections 2")) << server_->metrics_text();
  }
  // The channel's last reference is gone; its connection closes soon after.
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text = server_->metrics_text();
    if (has_line(text, "uringrpc_server_connections 1")) break;
    usleep(10'000);
  }
  EXPECT_TRUE(has_line(text, "uringrpc_server_connections 1")) << text;
  EXPECT_TRUE(has_line(text, "uringrpc_server_connections_accepted_total 2")) << text;
}

TEST_F(Metrics, UnknownMethodsAreOneSeriesAndUnservedOnesAreNotCounted) {
  start(true);
  ASSERT_TRUE(unary_call(channel_, "/made.Up/A", "x").ok());
  ASSERT_TRUE(unary_call(channel_, "/other.Made.Up/B", "x").ok());
  ASSERT_TRUE(unary_call(channel_, "/c", "x").ok());
  const std::string text = server_->metrics_text();
  const std::string unknown = "grpc_type=\"unary\",grpc_service=\"unknown\",grpc_method=\"unknown\"";
  EXPECT_TRUE(has_line(text, "grpc_server_started_total{" + unknown + "} 3")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + unknown + ",grpc_code=\"OK\"} 3")) << text;
  EXPECT_EQ(text.find("made.Up"), std::string::npos) << text;
}

TEST(MetricsOff, NoTextAndNoEndpoint) {
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  server.add_insecure_port("127.0.0.1:0");
  server.start();
  EXPECT_THROW(server.metrics_text(), uringrpc::UsageError);
  EXPECT_EQ(server.metrics_port(), 0);
  server.stop();
}

TEST(MetricsOptions, AnEndpointWithoutMetricsIsRefused) {
  uringrpc::ServerOptions options;
  options.metrics.listen = "127.0.0.1:0";
  EXPECT_THROW(uringrpc::Server{options}, std::invalid_argument);
}

TEST(MetricsOptions, ATakenMetricsPortFailsStart) {
  uringrpc::ServerOptions options{.shards = 1};
  options.metrics.enabled = true;
  options.metrics.listen = "127.0.0.1:0";
  uringrpc::Server first(options);
  first.add_insecure_port("127.0.0.1:0");
  first.start();
  options.metrics.listen = "127.0.0.1:" + std::to_string(first.metrics_port());
  uringrpc::Server second(options);
  second.add_insecure_port("127.0.0.1:0");
  EXPECT_THROW(second.start(), uringrpc::BindError);
  first.stop();
}

}  // namespace
