// Rich error details: a handler ends its call with a Status carrying a serialized
// google.rpc.Status (make_status, ctx.abort(Status), ctx.set_error_details), the server
// sends it as grpc-status-details-bin, and the real gRPC C++ client reads it back through
// grpc::Status::error_details() and parses it: unary, after streamed messages, client and
// bidi streaming. A status whose trailers would pass the client's advertised header list
// size (8192 bytes for gRPC C++) becomes INTERNAL: tested at the exact byte.
#include <google/protobuf/duration.pb.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "../common/grpc_test_client.h"
#include "rpc_status.pb.h"
#include "uringrpc/protobuf.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::StatusCode;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::StreamingCall;

// The google.rpc.Status a handler sends: code, message and one Any detail.
google::rpc::Status rich(int code, const std::string& message, int64_t seconds) {
  google::rpc::Status st;
  st.set_code(code);
  st.set_message(message);
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  st.add_details()->PackFrom(d);
  return st;
}

// Parses what the client read back and checks it is rich(code, message, seconds).
void expect_rich(const CallResult& r, int code, const std::string& message, int64_t seconds) {
  ASSERT_FALSE(r.error_details.empty()) << "no error details: " << describe(r);
  google::rpc::Status st;
  ASSERT_TRUE(st.ParseFromString(r.error_details));
  EXPECT_EQ(st.code(), code);
  EXPECT_EQ(st.message(), message);
  ASSERT_EQ(st.details_size(), 1);
  google::protobuf::Duration d;
  ASSERT_TRUE(st.details(0).UnpackTo(&d));
  EXPECT_EQ(d.seconds(), seconds);
}

// "N,M,S": details of N opaque bytes, a message of M 'x's, S messages streamed first.
struct Sized {
  size_t details, message, streamed;
};
Sized parse_sized(const std::string& s) {
  Sized z{};
  if (std::sscanf(s.c_str(), "%zu,%zu,%zu", &z.details, &z.message, &z.streamed) != 3) throw std::invalid_argument(s);
  return z;
}

// One request and half-close, then every response and the status (any shape).
CallResult stream_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                       const std::string& request) {
  StreamingCall call(channel, method);
  call.write_last(request);
  while (call.read()) {
  }
  return call.finish();
}

class RichErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});
    server_->add_method("/rich.E/Unary", uringrpc::unary([this](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          // As free metadata the key stays reserved; through the Status it goes.
                          try {
                            ctx.set_trailing_metadata({{"grpc-status-details-bin", "x"}});
                          } catch (const std::invalid_argument&) {
                            reserved_refused_ = true;
                          }
                          co_return uringrpc::make_status(StatusCode::INVALID_ARGUMENT, "bad name",
                                                          rich(3, "bad name", 7));
                        }));
    server_->add_method("/rich.E/AfterMessages", uringrpc::server_streaming([](Bytes, ServerContext& ctx) -> Task<void> {
                          for (int i = 0; i < 3; ++i) co_await ctx.write(Bytes(std::string("m") + char('0' + i)));
                          ctx.abort(uringrpc::make_status(StatusCode::FAILED_PRECONDITION, "after three",
                                                          rich(9, "after three", 3)),
                                    {{"x-extra", "kept"}});
                        }));
    server_->add_method("/rich.E/Stream", uringrpc::server_streaming([](Bytes, ServerContext& ctx) -> Task<void> {
                          co_await ctx.write(Bytes(std::string("one")));
                          ctx.set_code(StatusCode::ABORTED);
                          ctx.set_details("set by hand");
                          ctx.set_error_details(rich(10, "set by hand", 10).SerializeAsString());
                          co_return;
                        }));
    server_->add_method("/rich.E/ClientStream",
                        uringrpc::client_streaming([](uringrpc::Reader<Bytes>& reader, ServerContext&) -> Task<Bytes> {
                          int n = 0;
                          while (auto m = co_await reader.next()) ++n;
                          co_return uringrpc::make_status(StatusCode::OUT_OF_RANGE, "read " + std::to_string(n),
                                                          rich(11, "read " + std::to_string(n), n));
                        }));
    server_->add_method("/rich.E/Bidi", uringrpc::bidi_streaming([](uringrpc::Reader<Bytes>& reader,
                                                                    ServerContext& ctx) -> Task<void> {
                          int n = 0;
                          while (auto m = co_await reader.next()) {
                            co_await ctx.write(std::move(*m));
                            if (++n == 2) break;
                          }
                          ctx.abort(uringrpc::make_status(StatusCode::RESOURCE_EXHAUSTED, "two is enough",
                                                          rich(8, "two is enough", 2)));
                        }));
    // Error details on an OK call are not sent.
    server_->add_method("/rich.E/OkWithDetails", uringrpc::unary([](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          ctx.set_error_details(rich(3, "ignored", 1).SerializeAsString());
                          co_return req;
                        }));
    server_->add_method("/rich.E/Sized", uringrpc::server_streaming([](Bytes req, ServerContext& ctx) -> Task<void> {
                          Sized z = parse_sized(std::string(req.view()));
                          for (size_t i = 0; i < z.streamed; ++i) co_await ctx.write(Bytes(std::string("m")));
                          ctx.abort(uringrpc::Status{StatusCode::INVALID_ARGUMENT, std::string(z.message, 'x'),
                                                     std::string(z.details, '\x01')});
                        }));
    int port = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
    channel_ = uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port));
  }
  void TearDown() override { server_->stop(); }

  CallResult sized(size_t details, size_t message, size_t streamed) {
    return stream_call(channel_, "/rich.E/Sized",
                                         std::to_string(details) + "," + std::to_string(message) + "," +
                                             std::to_string(streamed));
  }

  // The exact boundary: the largest message length whose status the client accepts with its
  // details intact; one byte more is INTERNAL, naming a block one byte over the limit.
  void expect_boundary_at_client_limit(size_t streamed) {
    const size_t details = 5000;  // 6667 base64 characters
    size_t lo = 0, hi = 2000;     // lo fits, hi does not
    ASSERT_EQ(sized(details, lo, streamed).code, grpc::StatusCode::INVALID_ARGUMENT);
    ASSERT_EQ(sized(details, hi, streamed).code, grpc::StatusCode::INTERNAL);
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      (sized(details, mid, streamed).code == grpc::StatusCode::INVALID_ARGUMENT ? lo : hi) = mid;
    }
    CallResult fits = sized(details, lo, streamed);
    EXPECT_EQ(fits.code, grpc::StatusCode::INVALID_ARGUMENT) << describe(fits);
    EXPECT_EQ(fits.details, std::string(lo, 'x'));
    EXPECT_EQ(fits.error_details, std::string(details, '\x01'));
    EXPECT_EQ(fits.responses.size(), streamed);
    CallResult over = sized(details, lo + 1, streamed);
    EXPECT_EQ(over.code, grpc::StatusCode::INTERNAL) << describe(over);
    EXPECT_NE(over.details.find("8193-byte header block, over the client's limit of 8192 bytes"), std::string::npos)
        << over.details;
    EXPECT_TRUE(over.error_details.empty());
    EXPECT_EQ(over.responses.size(), streamed);
  }

  std::unique_ptr<uringrpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  bool reserved_refused_ = false;
};

TEST_F(RichErrors, UnaryStatusCarriesDetailsTheClientParses) {
  CallResult r = uringrpc::testing::unary_call(channel_, "/rich.E/Unary", "");
  EXPECT_EQ(r.code, grpc::StatusCode::INVALID_ARGUMENT) << describe(r);
  EXPECT_EQ(r.details, "bad name");
  expect_rich(r, 3, "bad name", 7);
  EXPECT_TRUE(reserved_refused_) << "grpc-status-details-bin was accepted as free trailing metadata";
  EXPECT_EQ(r.trailers.count("x-extra"), 0u);
}

TEST_F(RichErrors, DetailsAfterStreamedMessagesWithTrailingMetadata) {
  CallResult r = stream_call(channel_, "/rich.E/AfterMessages", "");
  EXPECT_EQ(r.code, grpc::StatusCode::FAILED_PRECONDITION) << describe(r);
  EXPECT_EQ(r.responses, (std::vector<std::string>{"m0", "m1", "m2"}));
  expect_rich(r, 9, "after three", 3);
  auto it = r.trailers.find("x-extra");
  ASSERT_NE(it, r.trailers.end());
  EXPECT_EQ(it->second, "kept");
}

TEST_F(RichErrors, SetErrorDetailsOnTheContextGoesWithTheCode) {
  CallResult r = stream_call(channel_, "/rich.E/Stream", "");
  EXPECT_EQ(r.code, grpc::StatusCode::ABORTED) << describe(r);
  EXPECT_EQ(r.responses, std::vector<std::string>{"one"});
  expect_rich(r, 10, "set by hand", 10);
}

TEST_F(RichErrors, ClientStreamingAndBidiEndWithDetails) {
  {
    StreamingCall call(channel_, "/rich.E/ClientStream");
    ASSERT_TRUE(call.write("a"));
    ASSERT_TRUE(call.write("b"));
    ASSERT_TRUE(call.write_last("c"));
    CallResult r = call.finish();
    EXPECT_EQ(r.code, grpc::StatusCode::OUT_OF_RANGE) << describe(r);
    expect_rich(r, 11, "read 3", 3);
  }
  {
    StreamingCall call(channel_, "/rich.E/Bidi");
    ASSERT_TRUE(call.write("x"));
    EXPECT_EQ(call.read(), "x");
    ASSERT_TRUE(call.write("y"));
    EXPECT_EQ(call.read(), "y");
    EXPECT_EQ(call.read(), std::nullopt);
    CallResult r = call.finish();
    EXPECT_EQ(r.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << describe(r);
    expect_rich(r, 8, "two is enough", 2);
  }
}

TEST_F(RichErrors, NoDetailsWithAnOkStatus) {
  CallResult r = uringrpc::testing::unary_call(channel_, "/rich.E/OkWithDetails", "hi");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses, std::vector<std::string>{"hi"});
  EXPECT_TRUE(r.error_details.empty());
}

TEST_F(RichErrors, TrailersOnlyStatusOverTheClientsHeaderListLimitIsInternal) {
  expect_boundary_at_client_limit(0);
}

TEST_F(RichErrors, TrailersAfterMessagesOverTheClientsHeaderListLimitAreInternal) {
  expect_boundary_at_client_limit(2);
}

TEST_F(RichErrors, HugeDetailsAreInternalNotATimeout) {
  // 64 KiB of details (87 KiB of base64): past the client's limit and past what nghttp2
  // sends at all. The client gets INTERNAL at once, never a deadline.
  for (size_t streamed : {0, 1}) {
    auto t0 = std::chrono::steady_clock::now();
    CallResult r = sized(64 << 10, 10, streamed);
    EXPECT_EQ(r.code, grpc::StatusCode::INTERNAL) << describe(r);
    EXPECT_NE(r.details.find("over the client's limit"), std::string::npos) << r.details;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  }
  // The connection still serves.
  CallResult r = uringrpc::testing::unary_call(channel_, "/rich.E/OkWithDetails", "still");
  EXPECT_TRUE(r.ok()) << describe(r);
}

}  // namespace
