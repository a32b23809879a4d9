// End-to-end metadata and status details with the real gRPC client: request metadata
// (ascii and -bin) reaches ServerContext decoded, initial and trailing metadata reach the
// client, grpc-message survives percent-encoding exactly, invalid outgoing metadata is
// refused with std::invalid_argument, and an escaping exception becomes UNKNOWN.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::Metadata;
using uringrpc::ServerContext;
using uringrpc::StatusCode;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::ClientMetadata;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

// Every byte value, so base64 and any accidental text handling are exercised.
std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}
const std::string kBinary = all_bytes();
const std::string kBinary2("\x00\xff\x00\r\n\x80 trailing \xc3\x28", 19);
const std::string kTrickyDetails =
    "h\xc3\xa9llo w\xc3\xb6rld 100% done \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac %41 %% %zz \t tab\r\nnewline ~!";

std::vector<std::string> values_of(const std::multimap<std::string, std::string>& md, const std::string& key) {
  std::vector<std::string> out;
  auto [b, e] = md.equal_range(key);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

class MetadataE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});

    server_->add_method("/e2e.Md/Capture", uringrpc::unary([this](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          std::lock_guard lock(mu_);
                          captured_ = ctx.client_metadata();
                          auto v = ctx.client_metadata_value("x-ascii");
                          ascii_lookup_ = v ? std::string(*v) : "<absent>";
                          co_return Bytes("captured");
                        }));

    server_->add_method("/e2e.Md/Send", uringrpc::unary([](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          ctx.add_initial_metadata("x-init", "init-value");
                          ctx.add_initial_metadata("x-init-bin", kBinary);
                          ctx.set_trailing_metadata({{"x-trail", "trail-value"}, {"x-trail-bin", kBinary2}});
                          co_return req;
                        }));

    server_->add_method("/e2e.Md/SendStreaming",
                        uringrpc::server_streaming([](Bytes, ServerContext& ctx) -> Task<void> {
                          ctx.add_initial_metadata("x-init-bin", kBinary2);
                          ctx.send_initial_metadata();
                          co_await uringrpc::sleep_for(5ms);
                          co_await ctx.write(Bytes("one"));
                          co_await ctx.write(Bytes("two"));
                          ctx.set_trailing_metadata({{"x-trail-bin", kBinary}, {"x-count", "2"}});
                        }));

    // Ends with an error before any message: a Trailers-Only response.
    server_->add_method("/e2e.Md/ErrorWithTrailers", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          ctx.set_trailing_metadata({{"x-why", "not here"}, {"x-why-bin", kBinary2}});
                          ctx.set_code(StatusCode::NOT_FOUND);
                          ctx.set_details("no such thing");
                          co_return Bytes("discarded");
                        }));

    server_->add_method("/e2e.Md/Details", uringrpc::unary([](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          ctx.set_code(StatusCode::INVALID_ARGUMENT);
                          ctx.set_details(req.str());
                          co_return Bytes();
                        }));

    server_->add_method("/e2e.Md/Abort", uringrpc::unary([](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          co_await uringrpc::sleep_for(1ms);
                          ctx.abort(StatusCode::FAILED_PRECONDITION, req.str(), {{"x-abort-bin", kBinary}});
                        }));

    server_->add_method("/e2e.Md/BadOutgoing", uringrpc::unary([this](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          std::lock_guard lock(mu_);
                          try {
                            ctx.set_trailing_metadata({{"X-Upper", "v"}});
                            errors_.push_back("<no exception for X-Upper>");
                          } catch (const std::invalid_argument& e) {
                            errors_.push_back(e.what());
                          }
                          try {
                            ctx.set_trailing_metadata({{"grpc-foo", "v"}});
                            errors_.push_back("<no exception for grpc-foo>");
                          } catch (const std::invalid_argument& e) {
                            errors_.push_back(e.what());
                          }
                          try {
                            ctx.add_initial_metadata("Bad-Initial", "v");
                            errors_.push_back("<no exception for Bad-Initial>");
                          } catch (const std::invalid_argument& e) {
                            errors_.push_back(e.what());
                          }
                          co_return Bytes("still fine");
                        }));

    server_->add_method("/e2e.Md/Throw", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                          if (!req.empty()) throw std::runtime_error(req.str());
                          co_return req;
                        }));

    server_->add_method("/e2e.Md/ThrowAfterWrite",
                        uringrpc::server_streaming([](Bytes req, ServerContext& ctx) -> Task<void> {
                          co_await ctx.write(Bytes("before"));
                          throw std::runtime_error(req.str());
                        }));

    port_ = server_->add_insecure_port("127.0.0.1:0");
    ASSERT_GT(port_, 0);
    server_->start();
    channel_ = make_channel("127.0.0.1:" + std::to_string(port_));
  }

  void TearDown() override {
    channel_.reset();
    if (server_) server_->stop();
  }

  std::mutex mu_;
  Metadata captured_;
  std::string ascii_lookup_;
  std::vector<std::string> errors_;
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(MetadataE2e, ClientAsciiAndBinaryMetadataReachServerContextDecoded) {
  ClientMetadata md{{"x-ascii", "hello world"},
                    {"x-data-bin", kBinary},
                    {"x-multi", "one"},
                    {"x-multi", "two"},
                    {"x-empty-bin", ""}};
  CallResult r = unary_call(channel_, "/e2e.Md/Capture", "", 10s, md);
  ASSERT_TRUE(r.ok()) << describe(r);

  std::lock_guard lock(mu_);
  auto find = [&](const std::string& key) {
    std::vector<std::string> out;
    for (auto& [k, v] : captured_) {
      if (k == key) out.push_back(v);
    }
    return out;
  };
  EXPECT_EQ(find("x-ascii"), std::vector<std::string>{"hello world"});
  auto bin = find("x-data-bin");
  ASSERT_EQ(bin.size(), 1u);
  EXPECT_EQ(bin[0].size(), 256u);
  EXPECT_TRUE(bin[0] == kBinary) << "the -bin value was not base64-decoded back to the client's bytes";
  EXPECT_EQ(find("x-multi"), (std::vector<std::string>{"one", "two"})) << "repeated keys lost or reordered";
  EXPECT_EQ(find("x-empty-bin"), std::vector<std::string>{""});
  EXPECT_EQ(ascii_lookup_, "hello world");
  for (auto& [k, v] : captured_) {
    EXPECT_FALSE(!k.empty() && k[0] == ':') << "pseudo-header " << k << " in client_metadata()";
    EXPECT_TRUE(std::none_of(k.begin(), k.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) << k;
  }
}

TEST_F(MetadataE2e, InitialAndTrailingMetadataReachTheClient) {
  CallResult r = unary_call(channel_, "/e2e.Md/Send", "payload", 10s);
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "payload");
  EXPECT_EQ(values_of(r.initial_metadata, "x-init"), std::vector<std::string>{"init-value"});
  auto init_bin = values_of(r.initial_metadata, "x-init-bin");
  ASSERT_EQ(init_bin.size(), 1u);
  EXPECT_TRUE(init_bin[0] == kBinary);
  EXPECT_EQ(values_of(r.trailers, "x-trail"), std::vector<std::string>{"trail-value"});
  auto trail_bin = values_of(r.trailers, "x-trail-bin");
  ASSERT_EQ(trail_bin.size(), 1u);
  EXPECT_TRUE(trail_bin[0] == kBinary2);
  EXPECT_TRUE(values_of(r.initial_metadata, "x-trail").empty()) << "trailing metadata sent as initial";
  EXPECT_TRUE(values_of(r.trailers, "x-init").empty()) << "initial metadata sent as trailing";
}

TEST_F(MetadataE2e, StreamingInitialMetadataSentEarlyAndTrailersAfterMessages) {
  StreamingCall call(channel_, "/e2e.Md/SendStreaming", 10s);
  ASSERT_TRUE(call.write_last("go"));
  while (call.read()) {
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses, (std::vector<std::string>{"one", "two"}));
  auto init_bin = values_of(r.initial_metadata, "x-init-bin");
  ASSERT_EQ(init_bin.size(), 1u);
  EXPECT_TRUE(init_bin[0] == kBinary2);
  auto trail_bin = values_of(r.trailers, "x-trail-bin");
  ASSERT_EQ(trail_bin.size(), 1u);
  EXPECT_TRUE(trail_bin[0] == kBinary);
  EXPECT_EQ(values_of(r.trailers, "x-count"), std::vector<std::string>{"2"});
}

TEST_F(MetadataE2e, TrailersOnlyErrorCarriesTrailingMetadata) {
  CallResult r = unary_call(channel_, "/e2e.Md/ErrorWithTrailers", "", 10s);
  EXPECT_EQ(r.code, grpc::StatusCode::NOT_FOUND) << describe(r);
  EXPECT_EQ(r.details, "no such thing");
  EXPECT_TRUE(r.responses.empty());
  EXPECT_EQ(values_of(r.trailers, "x-why"), std::vector<std::string>{"not here"});
  auto why_bin = values_of(r.trailers, "x-why-bin");
  ASSERT_EQ(why_bin.size(), 1u);
  EXPECT_TRUE(why_bin[0] == kBinary2);
}

TEST_F(MetadataE2e, StatusDetailsWithUtf8AndPercentRoundTripExactly) {
  CallResult r = unary_call(channel_, "/e2e.Md/Details", kTrickyDetails, 10s);
  EXPECT_EQ(r.code, grpc::StatusCode::INVALID_ARGUMENT) << describe(r);
  EXPECT_EQ(r.details, kTrickyDetails);
  // A lone '%' and one that looks like an escape must not be decoded on the way back.
  CallResult pct = unary_call(channel_, "/e2e.Md/Details", "%", 10s);
  EXPECT_EQ(pct.details, "%");
  CallResult esc = unary_call(channel_, "/e2e.Md/Details", "%25%2", 10s);
  EXPECT_EQ(esc.details, "%25%2");
}

TEST_F(MetadataE2e, AbortCarriesDetailsAndTrailingMetadata) {
  CallResult r = unary_call(channel_, "/e2e.Md/Abort", kTrickyDetails, 10s);
  EXPECT_EQ(r.code, grpc::StatusCode::FAILED_PRECONDITION) << describe(r);
  EXPECT_EQ(r.details, kTrickyDetails);
  auto bin = values_of(r.trailers, "x-abort-bin");
  ASSERT_EQ(bin.size(), 1u);
  EXPECT_TRUE(bin[0] == kBinary);
}

TEST_F(MetadataE2e, InvalidOutgoingMetadataThrowsInvalidArgumentNamingTheKind) {
  CallResult r = unary_call(channel_, "/e2e.Md/BadOutgoing", "", 10s);
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "still fine");
  EXPECT_TRUE(values_of(r.trailers, "X-Upper").empty());
  EXPECT_TRUE(values_of(r.trailers, "x-upper").empty());
  EXPECT_TRUE(values_of(r.trailers, "grpc-foo").empty());
  std::lock_guard lock(mu_);
  ASSERT_EQ(errors_.size(), 3u);
  EXPECT_NE(errors_[0].find("trailing"), std::string::npos) << errors_[0];
  EXPECT_NE(errors_[1].find("trailing"), std::string::npos) << errors_[1];
  EXPECT_NE(errors_[2].find("initial"), std::string::npos) << errors_[2];
}

TEST_F(MetadataE2e, ExceptionEscapingHandlerGivesUnknownNamingTheException) {
  CallResult r = unary_call(channel_, "/e2e.Md/Throw", "boom: 42 \xe2\x9c\x93 100%", 10s);
  EXPECT_EQ(r.code, grpc::StatusCode::UNKNOWN) << describe(r);
  EXPECT_EQ(r.details, "Unexpected std::runtime_error: boom: 42 \xe2\x9c\x93 100%");
  // The server carries on.
  CallResult ok = unary_call(channel_, "/e2e.Md/Throw", "", 10s);
  EXPECT_TRUE(ok.ok()) << describe(ok);
}

TEST_F(MetadataE2e, ExceptionAfterAStreamedMessageEndsWithUnknownInTrailers) {
  StreamingCall call(channel_, "/e2e.Md/ThrowAfterWrite", 10s);
  ASSERT_TRUE(call.write_last("late failure"));
  while (call.read()) {
  }
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::UNKNOWN) << describe(r);
  EXPECT_EQ(r.details, "Unexpected std::runtime_error: late failure");
  EXPECT_EQ(r.responses, std::vector<std::string>{"before"});
}

}  // namespace
