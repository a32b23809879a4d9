// calls.max_send_message_bytes with the real gRPC client: a response message of exactly the
// limit goes out, one byte more ends the call with gRPC C++'s RESOURCE_EXHAUSTED "Sent message
// larger than max (N vs. M)" and sends none of it, the size counted before compression, and
// the connection with its other calls goes on.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

constexpr size_t kLimit = 64u << 10;

// Bytes that do not compress much, so a limit checked after compression would also trip.
std::string noise(size_t n, unsigned seed) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u + seed;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::string sent_larger(size_t size) {
  return "Sent message larger than max (" + std::to_string(size) + " vs. " + std::to_string(kLimit) + ")";
}

class SendLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    uringrpc::ServerOptions opts;
    opts.shards = 1;
    opts.calls.max_send_message_bytes = kLimit;
    server_ = std::make_unique<uringrpc::Server>(opts);

    // Answers with a message of the size the request names.
    server_->add_method("/e2e.SendLimit/Sized", uringrpc::unary([this](Bytes req, ServerContext&) -> Task<Bytes> {
                          sized_calls_.fetch_add(1);
                          co_return Bytes(noise(std::stoul(req.str()), 1));
                        }));
    // The same, as gzip when the client accepts it: the limit is on the uncompressed size.
    server_->add_method("/e2e.SendLimit/SizedZeros",
                        uringrpc::unary([this](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          ctx.set_compression(Compression::kGzip);
                          compression_.store(ctx.compression());
                          co_return Bytes(std::string(std::stoul(req.str()), '\0'));
                        }));
    // Server streaming: the request lists sizes ("65536 65537 10"); one message of each, and
    // what each ctx.write() returned goes into write_results_ ("1 0"), stopping at a false.
    server_->add_method("/e2e.SendLimit/Sizes",
                        uringrpc::server_streaming([this](Bytes req, ServerContext& ctx) -> Task<void> {
                          std::istringstream in(req.str());
                          std::string results;
                          size_t size;
                          unsigned i = 0;
                          while (in >> size) {
                            bool ok = co_await ctx.write(Bytes(noise(size, i++)));
                            results += results.empty() ? "" : " ";
                            results += ok ? "1" : "0";
                            {
                              std::lock_guard lock(mu_);
                              write_results_ = results;
                            }
                            if (!ok) co_return;
                          }
                        }));
    server_->add_method("/e2e.SendLimit/BidiEcho",
                        uringrpc::bidi_streaming([](uringrpc::Reader<Bytes>& reader, ServerContext& ctx) -> Task<void> {
                          while (auto m = co_await reader.next()) co_await ctx.write(std::move(*m));
                        }));
    int port = server_->add_insecure_port("127.0.0.1:0");
    ASSERT_GT(port, 0);
    server_->start();
    channel_ = make_channel("127.0.0.1:" + std::to_string(port));
  }

  void TearDown() override {
    channel_.reset();
    if (server_) server_->stop();
  }

  std::string write_results() {
    std::lock_guard lock(mu_);
    return write_results_;
  }

  std::unique_ptr<uringrpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::atomic<int> sized_calls_{0};
  std::atomic<Compression> compression_{Compression::kNone};
  std::mutex mu_;
  std::string write_results_;
};

TEST_F(SendLimit, UnaryResponseOfExactlyTheLimitIsSentAndOneByteMoreIsResourceExhausted) {
  CallResult at = unary_call(channel_, "/e2e.SendLimit/Sized", std::to_string(kLimit), 5s);
  ASSERT_TRUE(at.ok()) << describe(at);
  ASSERT_EQ(at.responses.size(), 1u);
  EXPECT_EQ(at.responses[0], noise(kLimit, 1));

  CallResult over = unary_call(channel_, "/e2e.SendLimit/Sized", std::to_string(kLimit + 1), 5s);
  EXPECT_EQ(over.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(over);
  EXPECT_EQ(over.details, sent_larger(kLimit + 1));
  EXPECT_TRUE(over.responses.empty()) << describe(over);
  EXPECT_EQ(sized_calls_.load(), 2) << "the handler runs; only its response is refused";

  // The connection is fine afterwards.
  CallResult after = unary_call(channel_, "/e2e.SendLimit/Sized", "5", 5s);
  ASSERT_TRUE(after.ok()) << describe(after);
  EXPECT_EQ(after.responses.at(0), noise(5, 1));
}

TEST_F(SendLimit, ServerStreamingStopsAtTheOversizedMessageAndSendsNoneOfIt) {
  StreamingCall call(channel_, "/e2e.SendLimit/Sizes", 5s);
  ASSERT_TRUE(call.write_last(std::to_string(kLimit) + " " + std::to_string(kLimit + 1) + " 10"));
  std::vector<std::string> got;
  while (auto m = call.read()) got.push_back(std::move(*m));
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(r);
  EXPECT_EQ(r.details, sent_larger(kLimit + 1));
  ASSERT_EQ(got.size(), 1u) << "only the message at the limit goes out";
  EXPECT_EQ(got[0], noise(kLimit, 0));
  // The handler learns it from the write: false for the refused message.
  for (int i = 0; i < 100 && write_results() != "1 0"; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(write_results(), "1 0");
}

TEST_F(SendLimit, LimitCountsTheMessageBeforeCompression) {
  // kLimit + 1 zero bytes gzip to about a hundred: a check after compression would pass it.
  CallResult over = unary_call(channel_, "/e2e.SendLimit/SizedZeros", std::to_string(kLimit + 1), 5s);
  EXPECT_EQ(over.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(over);
  EXPECT_EQ(over.details, sent_larger(kLimit + 1));

  CallResult at = unary_call(channel_, "/e2e.SendLimit/SizedZeros", std::to_string(kLimit), 5s);
  ASSERT_TRUE(at.ok()) << describe(at);
  EXPECT_EQ(at.responses.at(0), std::string(kLimit, '\0'));
  // gRPC's client consumes grpc-encoding itself: the server side says what was used.
  EXPECT_EQ(compression_.load(), Compression::kGzip) << "the response should have been gzipped";
}

TEST_F(SendLimit, OtherCallsOnTheConnectionGoOn) {
  StreamingCall echo(channel_, "/e2e.SendLimit/BidiEcho", 10s);
  ASSERT_TRUE(echo.write("before"));
  ASSERT_EQ(echo.read().value_or("<none>"), "before");

  CallResult over = unary_call(channel_, "/e2e.SendLimit/Sized", std::to_string(kLimit + 1), 5s);
  EXPECT_EQ(over.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(over);
  StreamingCall stream(channel_, "/e2e.SendLimit/Sizes", 5s);
  ASSERT_TRUE(stream.write_last("3 " + std::to_string(2 * kLimit)));
  while (stream.read()) {
  }
  EXPECT_EQ(stream.finish().code, grpc::StatusCode::RESOURCE_EXHAUSTED);

  // The stream opened before still echoes: its connection was never dropped.
  ASSERT_TRUE(echo.write("after"));
  ASSERT_EQ(echo.read().value_or("<none>"), "after");
  ASSERT_TRUE(echo.writes_done());
  EXPECT_FALSE(echo.read().has_value());
  CallResult done = echo.finish();
  EXPECT_TRUE(done.ok()) << describe(done);
}

TEST(SendLimitDefault, NoLimitByDefaultAsInGrpc) {
  EXPECT_EQ(uringrpc::ServerOptions{}.calls.max_send_message_bytes, SIZE_MAX);
}

}  // namespace
