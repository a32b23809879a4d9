// End-to-end message size limits and multi-MiB messages with the real gRPC client:
// calls.max_receive_message_bytes is enforced (RESOURCE_EXHAUSTED, exact limit accepted), and
// messages of several MiB cross flow control intact in every direction, checked byte for
// byte against a deterministic pattern.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

constexpr size_t kMiB = 1u << 20;
constexpr auto kBigCallTimeout = 30s;

// Message `index` of a test: every byte depends on both its position and the index, so a
// reordered, shifted, truncated or duplicated chunk shows up.
std::string pattern(uint32_t index, size_t size) {
  std::string s(size, '\0');
  for (size_t j = 0; j < size; ++j) {
    s[j] = static_cast<char>((j * 131u + index * 977u + (j >> 12) * 7u) & 0xffu);
  }
  return s;
}

// "" when equal, else where they first differ (never the payloads: they are megabytes).
std::string mismatch(std::string_view got, std::string_view want) {
  if (got == want) return "";
  size_t n = std::min(got.size(), want.size());
  size_t i = 0;
  while (i < n && got[i] == want[i]) ++i;
  return "size " + std::to_string(got.size()) + " (want " + std::to_string(want.size()) +
         "), first difference at byte " + std::to_string(i);
}

// The gRPC client refuses responses over 4 MiB by default: lift that, and give the channel
// its own subchannel pool as the shared helper does.
std::shared_ptr<grpc::Channel> make_big_channel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

class MessageSize : public ::testing::Test {
 protected:
  void start(size_t max_receive) {
    uringrpc::ServerOptions opts;
    opts.shards = 1;
    opts.calls.max_receive_message_bytes = max_receive;
    server_ = std::make_unique<uringrpc::Server>(opts);

    server_->add_method("/e2e.Size/Echo", uringrpc::unary([this](Bytes req, ServerContext&) -> Task<Bytes> {
                          unary_invocations_.fetch_add(1);
                          co_return req;
                        }));

    // Client streaming: checks message i against pattern(i, size of message i).
    server_->add_method("/e2e.Size/Verify",
                        uringrpc::client_streaming([this](uringrpc::Reader<Bytes>& reader,
                                                          ServerContext& ctx) -> Task<Bytes> {
                          uint32_t i = 0;
                          size_t total = 0;
                          while (auto m = co_await reader.next()) {
                            stream_messages_.fetch_add(1);
                            std::string bad = mismatch(m->view(), pattern(i, m->size()));
                            if (!bad.empty()) {
                              ctx.set_code(uringrpc::StatusCode::DATA_LOSS);
                              ctx.set_details("message " + std::to_string(i) + ": " + bad);
                              co_return Bytes();
                            }
                            total += m->size();
                            ++i;
                          }
                          co_return Bytes(std::to_string(i) + " messages, " + std::to_string(total) + " bytes");
                        }));

    // Server streaming: the request is "count size"; answers pattern(0..count-1, size).
    server_->add_method("/e2e.Size/Produce",
                        uringrpc::server_streaming([](Bytes req, ServerContext& ctx) -> uringrpc::Stream<Bytes> {
                          std::string spec = req.str();
                          uint32_t count = static_cast<uint32_t>(std::stoul(spec));
                          size_t size = std::stoul(spec.substr(spec.find(' ') + 1));
                          (void)ctx;
                          for (uint32_t i = 0; i < count; ++i) co_yield Bytes(pattern(i, size));
                        }));

    // Bidi echo, one response per request as it arrives.
    server_->add_method("/e2e.Size/BidiEcho",
                        uringrpc::bidi_streaming([](uringrpc::Reader<Bytes>& reader,
                                                    ServerContext& ctx) -> Task<void> {
                          while (auto m = co_await reader.next()) co_await ctx.write(std::move(*m));
                        }));

    // Bidi: reads everything, then echoes it all (no write while a read is pending).
    server_->add_method("/e2e.Size/CollectThenEcho",
                        uringrpc::bidi_streaming([](uringrpc::Reader<Bytes>& reader,
                                                    ServerContext& ctx) -> Task<void> {
                          std::vector<Bytes> all;
                          while (auto m = co_await reader.next()) all.push_back(std::move(*m));
                          for (auto& m : all) co_await ctx.write(std::move(m));
                        }));

    port_ = server_->add_insecure_port("127.0.0.1:0");
    ASSERT_GT(port_, 0);
    server_->start();
    channel_ = make_big_channel("127.0.0.1:" + std::to_string(port_));
  }

  void TearDown() override {
    channel_.reset();
    if (server_) server_->stop();
  }

  std::atomic<int> unary_invocations_{0};
  std::atomic<int> stream_messages_{0};
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(MessageSize, RequestLargerThanMaxReceiveGivesResourceExhausted) {
  start(1 * kMiB);
  CallResult r = unary_call(channel_, "/e2e.Size/Echo", pattern(0, 2 * kMiB), 10s);
  EXPECT_EQ(r.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(r);
  EXPECT_EQ(unary_invocations_.load(), 0) << "the handler ran with an oversized request";
  // The connection and the server are fine afterwards.
  CallResult small = unary_call(channel_, "/e2e.Size/Echo", "small", 5s);
  ASSERT_TRUE(small.ok()) << describe(small);
  EXPECT_EQ(small.responses.at(0), "small");
}

TEST_F(MessageSize, RequestExactlyAtMaxReceiveIsAcceptedAndOneMoreByteIsNot) {
  start(1 * kMiB);
  std::string at_limit = pattern(1, 1 * kMiB);
  CallResult r = unary_call(channel_, "/e2e.Size/Echo", at_limit, 10s);
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(mismatch(r.responses[0], at_limit), "");

  CallResult over = unary_call(channel_, "/e2e.Size/Echo", pattern(2, 1 * kMiB + 1), 10s);
  EXPECT_EQ(over.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(over);
}

TEST_F(MessageSize, OversizedMessageLateInAStreamGivesResourceExhausted) {
  start(1 * kMiB);
  StreamingCall call(channel_, "/e2e.Size/Verify", 10s);
  ASSERT_TRUE(call.write(pattern(0, 512 << 10)));
  call.write(pattern(1, 2 * kMiB));  // may fail once the server has ended the call
  call.writes_done();
  while (call.read()) {
  }
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(r);
  EXPECT_EQ(stream_messages_.load(), 1) << "the handler should have had only the first message";
}

TEST_F(MessageSize, UnaryEightMiBRequestAndResponse) {
  start(16 * kMiB);
  std::string big = pattern(7, 8 * kMiB);
  CallResult r = unary_call(channel_, "/e2e.Size/Echo", big, kBigCallTimeout);
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(mismatch(r.responses[0], big), "");
}

TEST_F(MessageSize, ClientStreamingEightThreeMiBMessagesArriveByteForByte) {
  start(16 * kMiB);
  StreamingCall call(channel_, "/e2e.Size/Verify", kBigCallTimeout);
  for (uint32_t i = 0; i < 8; ++i) ASSERT_TRUE(call.write(pattern(i, 3 * kMiB))) << "write #" << i;
  ASSERT_TRUE(call.writes_done());
  auto summary = call.read();
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(*summary, "8 messages, " + std::to_string(24 * kMiB) + " bytes");
}

TEST_F(MessageSize, ServerStreamingEightThreeMiBMessagesArriveByteForByte) {
  start(16 * kMiB);
  StreamingCall call(channel_, "/e2e.Size/Produce", kBigCallTimeout);
  ASSERT_TRUE(call.write_last("8 " + std::to_string(3 * kMiB)));
  uint32_t i = 0;
  while (auto m = call.read()) {
    EXPECT_EQ(mismatch(*m, pattern(i, 3 * kMiB)), "") << "response #" << i;
    ++i;
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(i, 8u);
}

// Each echo is read before the next request goes out, so the handler waits in
// reader.next() right after a 5 MiB write (the case fixed in f706ecc).
TEST_F(MessageSize, BidiPingPongEchoOfFourFiveMiBMessages) {
  start(16 * kMiB);
  StreamingCall call(channel_, "/e2e.Size/BidiEcho", kBigCallTimeout);
  for (uint32_t i = 0; i < 4; ++i) {
    std::string m = pattern(i, 5 * kMiB);
    ASSERT_TRUE(call.write(m)) << "write #" << i << ": " << describe(call.finish());
    auto echo = call.read();
    ASSERT_TRUE(echo.has_value()) << "echo #" << i << ": " << describe(call.finish());
    EXPECT_EQ(mismatch(*echo, m), "") << "echo #" << i;
  }
  ASSERT_TRUE(call.writes_done());
  EXPECT_FALSE(call.read().has_value());
  CallResult r = call.finish();
  EXPECT_TRUE(r.ok()) << describe(r);
}

TEST_F(MessageSize, BidiFourFiveMiBMessagesEchoedAfterHalfClose) {
  start(16 * kMiB);
  StreamingCall call(channel_, "/e2e.Size/CollectThenEcho", kBigCallTimeout);
  for (uint32_t i = 0; i < 4; ++i) ASSERT_TRUE(call.write(pattern(i, 5 * kMiB))) << "write #" << i;
  ASSERT_TRUE(call.writes_done());
  uint32_t i = 0;
  while (auto echo = call.read()) {
    EXPECT_EQ(mismatch(*echo, pattern(i, 5 * kMiB)), "") << "echo #" << i;
    ++i;
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(i, 4u);
}

}  // namespace
