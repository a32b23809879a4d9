// Custom metadata keys beginning with "grpc-" belong to the protocol: every public way a
// handler can hand metadata to the library (initial, trailing, abort, a thrown AbortError)
// refuses them, and none reaches the real gRPC client. Near misses ("grpcx-", "x-grpc-")
// stay usable. The wire-level gRPC edge cases are in grpc_edge_cases_test.py.
#include <gtest/gtest.h>

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
using uringrpc::AbortError;
using uringrpc::Bytes;
using uringrpc::Metadata;
using uringrpc::ServerContext;
using uringrpc::Status;
using uringrpc::StatusCode;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::unary_call;

// Reserved spellings: the plain prefix, transport-owned names, a -bin variant and a
// made-up one. Each must be refused whatever its value.
const std::vector<std::string> kReservedKeys = {"grpc-",         "grpc-custom",  "grpc-status",
                                                "grpc-message",  "grpc-timeout", "grpc-encoding",
                                                "grpc-x-bin",    "grpc-status-details-bin"};

bool has_key(const std::multimap<std::string, std::string>& md, const std::string& key) {
  return md.find(key) != md.end();
}

class ReservedMetadata : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});

    // Tries every reserved key through add_initial_metadata and set_trailing_metadata,
    // records which were accepted, then answers OK.
    server_->add_method("/edge.Md/TryReserved", uringrpc::unary([this](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          std::lock_guard lock(mu_);
                          for (const auto& key : kReservedKeys) {
                            std::string value = key.ends_with("-bin") ? std::string("\x00\x01", 2) : "0";
                            try {
                              ctx.add_initial_metadata(key, value);
                              accepted_.push_back("initial " + key);
                            } catch (const std::invalid_argument&) {
                            }
                            try {
                              ctx.set_trailing_metadata({{key, value}});
                              accepted_.push_back("trailing " + key);
                            } catch (const std::invalid_argument&) {
                            }
                          }
                          co_return req;
                        }));

    // The near misses are ordinary custom metadata and must go through.
    server_->add_method("/edge.Md/NearMisses", uringrpc::unary([](Bytes req, ServerContext& ctx) -> Task<Bytes> {
                          ctx.add_initial_metadata("grpcx-init", "a");
                          ctx.set_trailing_metadata({{"x-grpc-status", "b"}, {"grpc", "c"}});
                          co_return req;
                        }));

    // abort() with a reserved trailing key: documented to end the RPC with UNKNOWN.
    server_->add_method("/edge.Md/AbortReserved", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                          ctx.abort(StatusCode::NOT_FOUND, "nope", {{"grpc-custom", "v"}});
                        }));

    // AbortError is public and takes trailing metadata directly, bypassing abort(): the
    // library must still refuse the reserved keys (a grpc-status of 0 here would turn an
    // error into OK on the client, or give it two statuses).
    server_->add_method("/edge.Md/ThrowAbortErrorReserved", uringrpc::unary([](Bytes, ServerContext&) -> Task<Bytes> {
                          throw AbortError(Status{StatusCode::NOT_FOUND, "nope"},
                                           Metadata{{"grpc-status", "0"}, {"grpc-custom", "v"}});
                          co_return Bytes();
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
  std::vector<std::string> accepted_;
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ReservedMetadata, InitialAndTrailingApiRefuseEveryGrpcPrefixedKey) {
  CallResult r = unary_call(channel_, "/edge.Md/TryReserved", "ping", 10s);
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "ping");
  {
    std::lock_guard lock(mu_);
    EXPECT_TRUE(accepted_.empty()) << "accepted: " << ::testing::PrintToString(accepted_);
  }
  for (const auto& key : {"grpc-", "grpc-custom", "grpc-x-bin"}) {
    EXPECT_FALSE(has_key(r.initial_metadata, key)) << key << " reached the client as initial metadata";
    EXPECT_FALSE(has_key(r.trailers, key)) << key << " reached the client as trailing metadata";
  }
}

TEST_F(ReservedMetadata, NearMissKeysAreOrdinaryMetadata) {
  CallResult r = unary_call(channel_, "/edge.Md/NearMisses", "x", 10s);
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_TRUE(has_key(r.initial_metadata, "grpcx-init"));
  EXPECT_TRUE(has_key(r.trailers, "x-grpc-status"));
  EXPECT_TRUE(has_key(r.trailers, "grpc"));
}

TEST_F(ReservedMetadata, AbortWithReservedTrailingKeyEndsUnknownWithoutTheKey) {
  CallResult r = unary_call(channel_, "/edge.Md/AbortReserved", "", 10s);
  EXPECT_EQ(r.code, grpc::StatusCode::UNKNOWN) << describe(r);
  EXPECT_FALSE(has_key(r.trailers, "grpc-custom"));
}

TEST_F(ReservedMetadata, ThrownAbortErrorWithReservedTrailingKeysNeverReachesTheWire) {
  CallResult r = unary_call(channel_, "/edge.Md/ThrowAbortErrorReserved", "", 10s);
  EXPECT_NE(r.code, grpc::StatusCode::OK) << "a reserved grpc-status in AbortError's metadata turned the error into OK";
  // Same rule as abort(): bad trailing metadata ends the RPC with UNKNOWN.
  EXPECT_EQ(r.code, grpc::StatusCode::UNKNOWN) << describe(r);
  EXPECT_FALSE(has_key(r.trailers, "grpc-custom")) << describe(r);
}

}  // namespace
