// End-to-end compression with the real gRPC C++ client: requests it compresses (gzip and
// deflate, unary and streaming) reach handlers inflated, and responses the server
// compresses (by the handler's choice or the server default) decode on the client.
// The wire itself (flags, headers, bombs, corrupt data) is checked in raw_http2_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::Compression;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

std::string text(size_t n, int seed = 0) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i) s += "record " + std::to_string((i + seed) % 131) + "; ";
  s.resize(n);
  return s;
}

// A channel whose every call compresses its requests with `algorithm`.
std::shared_ptr<grpc::Channel> compressing_channel(int port, grpc_compression_algorithm algorithm) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetCompressionAlgorithm(algorithm);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
}

class Compressed : public ::testing::TestWithParam<grpc_compression_algorithm> {
 protected:
  void start(uringrpc::ServerOptions options = {.shards = 1}) {
    server_ = std::make_unique<uringrpc::Server>(options);
    server_->add_method("/e2e.Zip/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> { co_return req; }));
    // Responds compressed with what the request's metadata names.
    server_->add_method("/e2e.Zip/EchoAs", uringrpc::unary([this](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          auto as = ctx.client_metadata_value("x-compress");
                          ctx.set_compression(as == "deflate" ? Compression::kDeflate : Compression::kGzip);
                          chosen_ = ctx.compression();
                          co_return req;
                        }));
    // Client streaming: the messages joined with '|'.
    server_->add_method("/e2e.Zip/Join", uringrpc::client_streaming([](uringrpc::Reader<Bytes>& r, ServerContext&)
                                                                       -> Task<Bytes> {
                          std::string all;
                          while (auto m = co_await r.next()) all += m->str() + "|";
                          co_return Bytes(all);
                        }));
    // Client streaming: '1' or '0' per message, as ServerContext::last_read_compressed saw it.
    server_->add_method("/e2e.Zip/Flags", uringrpc::client_streaming([](uringrpc::Reader<Bytes>& r, ServerContext& ctx)
                                                                        -> Task<Bytes> {
                          std::string flags;
                          while (auto m = co_await r.next()) flags += ctx.last_read_compressed() ? '1' : '0';
                          co_return Bytes(flags);
                        }));
    // Server streaming: five messages, compressed (gzip) unless the server default says.
    server_->add_method("/e2e.Zip/Five", uringrpc::server_streaming([](Bytes req, ServerContext& ctx) -> uringrpc::Stream<Bytes> {
                          if (ctx.compression() == Compression::kNone) ctx.set_compression(Compression::kGzip);
                          for (int i = 0; i < 5; ++i) co_yield Bytes(req.str() + std::to_string(i));
                        }));
    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::atomic<Compression> chosen_{Compression::kNone};
};

TEST_P(Compressed, ClientCompressedUnaryRequestReachesHandlerInflated) {
  start();
  auto channel = compressing_channel(port_, GetParam());
  for (size_t n : {size_t{0}, size_t{10}, size_t{1024}, size_t{300'000}}) {
    CallResult r = unary_call(channel, "/e2e.Zip/Echo", text(n));
    ASSERT_TRUE(r.ok()) << n << ": " << describe(r);
    EXPECT_EQ(r.responses.at(0), text(n)) << n;
  }
}

TEST_P(Compressed, ClientCompressedStreamReachesHandlerInflated) {
  start();
  StreamingCall call(compressing_channel(port_, GetParam()), "/e2e.Zip/Join");
  std::string want;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(call.write(text(5000, i)));
    want += text(5000, i) + "|";
  }
  ASSERT_TRUE(call.writes_done());
  while (call.read()) {
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), want);
}

TEST_P(Compressed, HandlerSeesWhichRequestMessagesCameCompressed) {
  start();
  // gRPC C++ sends a message uncompressed when compressing would not shrink it (one byte).
  StreamingCall call(compressing_channel(port_, GetParam()), "/e2e.Zip/Flags");
  for (const std::string& m : {text(5000), std::string("x"), text(7000)}) ASSERT_TRUE(call.write(m));
  ASSERT_TRUE(call.writes_done());
  while (call.read()) {
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "101");
  // And a channel that does not compress: no message is flagged.
  StreamingCall plain(uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port_)), "/e2e.Zip/Flags");
  ASSERT_TRUE(plain.write(text(5000)));
  ASSERT_TRUE(plain.writes_done());
  while (plain.read()) {
  }
  r = plain.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "0");
}

TEST_P(Compressed, ServerCompressedUnaryResponseDecodesOnTheClient) {
  start();
  auto channel = compressing_channel(port_, GetParam());
  const char* as = GetParam() == GRPC_COMPRESS_DEFLATE ? "deflate" : "gzip";
  CallResult r = unary_call(channel, "/e2e.Zip/EchoAs", text(100'000), 4s, {{"x-compress", as}});
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), text(100'000));
  // gRPC C++ accepts both, so the handler's choice stands.
  EXPECT_EQ(chosen_.load(), GetParam() == GRPC_COMPRESS_DEFLATE ? Compression::kDeflate : Compression::kGzip);
}

TEST_P(Compressed, ServerCompressedStreamDecodesOnTheClient) {
  start();
  StreamingCall call(compressing_channel(port_, GetParam()), "/e2e.Zip/Five");
  ASSERT_TRUE(call.write_last(text(3000)));
  while (call.read()) {
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(r.responses[i], text(3000) + std::to_string(i));
}

INSTANTIATE_TEST_SUITE_P(GzipAndDeflate, Compressed, ::testing::Values(GRPC_COMPRESS_GZIP, GRPC_COMPRESS_DEFLATE),
                         [](const auto& info) { return info.param == GRPC_COMPRESS_GZIP ? "gzip" : "deflate"; });

TEST(CompressionDefault, ServerDefaultCompressesResponsesOfHandlersThatDoNotChoose) {
  uringrpc::Server server({.shards = 1, .calls = {.default_compression = Compression::kDeflate}});
  std::atomic<Compression> seen{Compression::kNone};
  server.add_method("/e2e.Zip/Echo", uringrpc::unary([&](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                      seen = ctx.compression();
                      co_return req;
                    }));
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  CallResult r = unary_call(uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port)), "/e2e.Zip/Echo",
                            text(50'000));
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), text(50'000));
  EXPECT_EQ(seen.load(), Compression::kDeflate);
  server.stop();
}

TEST(CompressionDefault, OutOfRangeDefaultIsRefusedAtConstruction) {
  EXPECT_THROW(uringrpc::Server({.calls = {.default_compression = static_cast<Compression>(7)}}),
               std::invalid_argument);
}

}  // namespace
