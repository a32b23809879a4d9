// gRPC's standard interop cases (doc/interop-test-descriptions.md in grpc/grpc), as the
// real gRPC C++ client runs them against build/bin/interop-server, over h2c and over TLS,
// with the spec's sizes and assertions; then the server program itself: its flags, its
// certificate files, its graceful stop. With URINGRPC_INTEROP_TARGET=host:port the h2c cases
// call that address instead of a server of their own (a fleet behind a proxy:
// tests/fleet/), and the TLS ones are skipped.
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"
#include "grpc/testing/test.grpc.pb.h"
#include "server_process.h"

// gRPC core's test-only view of the flags of the last message a call received (exported
// by libgrpc, declared in gRPC's internal call_test_only.h): gRPC's own interop client uses
// it for server_compressed_*, since no public API says whether a message came compressed.
uint32_t grpc_call_test_only_get_message_flags(grpc_call* call);

namespace {

using grpc::ClientContext;
using grpc::StatusCode;
using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;
using grpc::testing::TestService;
using uringrpc::interop::ServerProcess;
using namespace std::chrono_literals;

// GRPC_WRITE_INTERNAL_TEST_ONLY_WAS_COMPRESSED in gRPC core (1.51): set on a received
// message that arrived with the compressed flag (gRPC decompresses it before we see it).
constexpr uint32_t kReceivedCompressed = 0x40000000u;

// The name gRPC's interop clients check the server certificate against
// (--server_host_override); the test certificate carries *.test.google.fr.
constexpr const char* kServerHostOverride = "foo.test.google.fr";

constexpr const char* kSpecialStatusMessage =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\t\n";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

enum class Transport { kH2c, kTls };
void PrintTo(Transport t, std::ostream* os) { *os << (t == Transport::kH2c ? "h2c" : "tls"); }

// One server process per transport for the whole suite: starting one takes ~10 ms, but
// the TLS one also shows that its generated certificate works with an unmodified client.
struct Servers {
  std::unique_ptr<ServerProcess> h2c, tls;
};
Servers* servers = nullptr;

// The address the h2c cases call when it is not a server of the suite's own; else empty.
std::string external_target() {
  const char* t = std::getenv("URINGRPC_INTEROP_TARGET");
  return t ? t : "";
}

class Interop : public ::testing::TestWithParam<Transport> {
 protected:
  static void SetUpTestSuite() {
    servers = new Servers;
    if (!external_target().empty()) return;
    servers->h2c = std::make_unique<ServerProcess>(std::vector<std::string>{"--port", "0", "--shards", "1"});
    servers->tls = std::make_unique<ServerProcess>(std::vector<std::string>{"--port=0", "--use_tls=true", "--shards=1"});
  }
  static void TearDownTestSuite() {
    delete servers;
    servers = nullptr;
  }

  void SetUp() override {
    if (!external_target().empty()) {
      if (GetParam() == Transport::kTls) GTEST_SKIP() << "URINGRPC_INTEROP_TARGET is h2c only";
      channel_ = uringrpc::testing::make_channel(external_target());
    } else if (GetParam() == Transport::kH2c) {
      channel_ = uringrpc::testing::make_channel("localhost:" + std::to_string(servers->h2c->port()));
    } else {
      ASSERT_FALSE(servers->tls->ca_path().empty()) << "the TLS server named no test CA";
      channel_ = uringrpc::testing::make_tls_channel("localhost:" + std::to_string(servers->tls->port()),
                                                     read_file(servers->tls->ca_path()), kServerHostOverride);
    }
    stub_ = TestService::NewStub(channel_);
  }

  static void deadline(ClientContext& ctx, std::chrono::milliseconds d = 10s) {
    ctx.set_deadline(std::chrono::system_clock::now() + d);
  }
  static bool received_compressed(ClientContext& ctx) {
    return (grpc_call_test_only_get_message_flags(ctx.c_call()) & kReceivedCompressed) != 0;
  }
  static SimpleRequest large_unary_request() {
    SimpleRequest req;
    req.set_response_size(314159);
    req.mutable_payload()->set_body(std::string(271828, '\0'));
    return req;
  }
  static StreamingOutputCallRequest output_request(std::vector<int> sizes, int request_bytes = 0) {
    StreamingOutputCallRequest req;
    for (int s : sizes) req.add_response_parameters()->set_size(s);
    if (request_bytes) req.mutable_payload()->set_body(std::string(static_cast<size_t>(request_bytes), '\0'));
    return req;
  }
  static void expect_zero_payload(const grpc::testing::Payload& p, size_t size) {
    EXPECT_EQ(p.type(), grpc::testing::COMPRESSABLE);
    EXPECT_EQ(p.body(), std::string(size, '\0'));
  }
  // After a cancelled or failed call, the same channel still gets answers.
  void expect_server_still_answers() {
    ClientContext ctx;
    deadline(ctx);
    Empty resp;
    grpc::Status s = stub_->EmptyCall(&ctx, Empty(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<TestService::Stub> stub_;
};

#define EXPECT_STATUS(s, code) EXPECT_EQ((s).error_code(), code) << (s).error_message()

TEST_P(Interop, EmptyUnary) {
  ClientContext ctx;
  deadline(ctx);
  Empty resp;
  grpc::Status s = stub_->EmptyCall(&ctx, Empty(), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.ByteSizeLong(), 0u);
}

TEST_P(Interop, LargeUnary) {
  ClientContext ctx;
  deadline(ctx);
  SimpleResponse resp;
  grpc::Status s = stub_->UnaryCall(&ctx, large_unary_request(), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  expect_zero_payload(resp.payload(), 314159);
}

TEST_P(Interop, ClientCompressedUnary) {
  SimpleRequest req = large_unary_request();
  req.mutable_expect_compressed()->set_value(true);
  {  // the probe: sent uncompressed while asking the server to expect compression
    ClientContext ctx;
    deadline(ctx);
    SimpleResponse resp;
    grpc::Status s = stub_->UnaryCall(&ctx, req, &resp);
    EXPECT_STATUS(s, StatusCode::INVALID_ARGUMENT);
  }
  {
    ClientContext ctx;
    deadline(ctx);
    ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    SimpleResponse resp;
    grpc::Status s = stub_->UnaryCall(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    expect_zero_payload(resp.payload(), 314159);
  }
  {
    req.mutable_expect_compressed()->set_value(false);
    ClientContext ctx;
    deadline(ctx);
    SimpleResponse resp;
    grpc::Status s = stub_->UnaryCall(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    expect_zero_payload(resp.payload(), 314159);
  }
}

TEST_P(Interop, ServerCompressedUnary) {
  for (bool compressed : {true, false}) {
    SCOPED_TRACE(compressed ? "response_compressed: true" : "response_compressed: false");
    SimpleRequest req = large_unary_request();
    req.mutable_response_compressed()->set_value(compressed);
    ClientContext ctx;
    deadline(ctx);
    SimpleResponse resp;
    grpc::Status s = stub_->UnaryCall(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(received_compressed(ctx), compressed);
    expect_zero_payload(resp.payload(), 314159);
  }
}

TEST_P(Interop, ClientStreaming) {
  ClientContext ctx;
  deadline(ctx);
  StreamingInputCallResponse resp;
  auto stream = stub_->StreamingInputCall(&ctx, &resp);
  for (int size : {27182, 8, 1828, 45904}) {
    StreamingInputCallRequest req;
    req.mutable_payload()->set_body(std::string(static_cast<size_t>(size), '\0'));
    ASSERT_TRUE(stream->Write(req));
  }
  ASSERT_TRUE(stream->WritesDone());
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.aggregated_payload_size(), 74922);
}

TEST_P(Interop, ClientCompressedStreaming) {
  StreamingInputCallRequest req;
  req.mutable_expect_compressed()->set_value(true);
  req.mutable_payload()->set_body(std::string(27182, '\0'));
  {  // the probe: an uncompressed message that says it is compressed
    ClientContext ctx;
    deadline(ctx);
    StreamingInputCallResponse resp;
    auto stream = stub_->StreamingInputCall(&ctx, &resp);
    stream->Write(req);  // may fail once the server has ended the call
    stream->WritesDone();
    grpc::Status s = stream->Finish();
    EXPECT_STATUS(s, StatusCode::INVALID_ARGUMENT);
  }
  ClientContext ctx;
  deadline(ctx);
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  StreamingInputCallResponse resp;
  auto stream = stub_->StreamingInputCall(&ctx, &resp);
  ASSERT_TRUE(stream->Write(req));
  StreamingInputCallRequest plain;
  plain.mutable_expect_compressed()->set_value(false);
  plain.mutable_payload()->set_body(std::string(45904, '\0'));
  ASSERT_TRUE(stream->Write(plain, grpc::WriteOptions().set_no_compression()));
  ASSERT_TRUE(stream->WritesDone());
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.aggregated_payload_size(), 73086);
}

TEST_P(Interop, ServerStreaming) {
  ClientContext ctx;
  deadline(ctx);
  auto stream = stub_->StreamingOutputCall(&ctx, output_request({31415, 9, 2653, 58979}));
  std::vector<size_t> sizes;
  StreamingOutputCallResponse resp;
  while (stream->Read(&resp)) {
    sizes.push_back(resp.payload().body().size());
    expect_zero_payload(resp.payload(), sizes.back());
  }
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(sizes, (std::vector<size_t>{31415, 9, 2653, 58979}));
}

TEST_P(Interop, ServerCompressedStreaming) {
  StreamingOutputCallRequest req;
  auto* first = req.add_response_parameters();
  first->set_size(31415);
  first->mutable_compressed()->set_value(true);
  auto* second = req.add_response_parameters();
  second->set_size(92653);
  second->mutable_compressed()->set_value(false);
  ClientContext ctx;
  deadline(ctx);
  auto stream = stub_->StreamingOutputCall(&ctx, req);
  StreamingOutputCallResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_TRUE(received_compressed(ctx)) << "the first response must have the compressed flag";
  expect_zero_payload(resp.payload(), 31415);
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_FALSE(received_compressed(ctx)) << "the second response must not have the compressed flag";
  expect_zero_payload(resp.payload(), 92653);
  EXPECT_FALSE(stream->Read(&resp)) << "exactly two responses";
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
}

TEST_P(Interop, PingPong) {
  ClientContext ctx;
  deadline(ctx);
  auto stream = stub_->FullDuplexCall(&ctx);
  const int response_sizes[] = {31415, 9, 2653, 58979};
  const int request_sizes[] = {27182, 8, 1828, 45904};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(stream->Write(output_request({response_sizes[i]}, request_sizes[i])));
    StreamingOutputCallResponse resp;
    ASSERT_TRUE(stream->Read(&resp)) << "no reply to request " << i;
    expect_zero_payload(resp.payload(), static_cast<size_t>(response_sizes[i]));
  }
  ASSERT_TRUE(stream->WritesDone());
  StreamingOutputCallResponse extra;
  EXPECT_FALSE(stream->Read(&extra)) << "exactly four responses";
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
}

TEST_P(Interop, EmptyStream) {
  ClientContext ctx;
  deadline(ctx);
  auto stream = stub_->FullDuplexCall(&ctx);
  ASSERT_TRUE(stream->WritesDone());
  StreamingOutputCallResponse resp;
  EXPECT_FALSE(stream->Read(&resp)) << "exactly zero responses";
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
}

// The status a unary call and a full-duplex call end with when the request carries
// response_status {code, message}.
void expect_echoed_status(TestService::Stub& stub, int code, const std::string& message) {
  SimpleRequest unary;
  unary.mutable_response_status()->set_code(code);
  unary.mutable_response_status()->set_message(message);
  ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  SimpleResponse resp;
  grpc::Status s = stub.UnaryCall(&ctx, unary, &resp);
  EXPECT_EQ(s.error_code(), code);
  EXPECT_EQ(s.error_message(), message);

  StreamingOutputCallRequest duplex;
  duplex.mutable_response_status()->set_code(code);
  duplex.mutable_response_status()->set_message(message);
  ClientContext dctx;
  dctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto stream = stub.FullDuplexCall(&dctx);
  stream->Write(duplex);  // may fail once the server has ended the call
  stream->WritesDone();
  s = stream->Finish();
  EXPECT_EQ(s.error_code(), code);
  EXPECT_EQ(s.error_message(), message);
}

TEST_P(Interop, StatusCodeAndMessage) { expect_echoed_status(*stub_, 2, "test status message"); }

TEST_P(Interop, SpecialStatusMessage) { expect_echoed_status(*stub_, 2, kSpecialStatusMessage); }

TEST_P(Interop, CustomMetadata) {
  const std::string initial_value = "test_initial_metadata_value";
  const std::string trailing_value = "\xab\xab\xab";
  auto check = [&](ClientContext& ctx) {
    auto initial = ctx.GetServerInitialMetadata().equal_range("x-grpc-test-echo-initial");
    ASSERT_NE(initial.first, initial.second) << "no x-grpc-test-echo-initial in the initial metadata";
    EXPECT_EQ(std::string(initial.first->second.data(), initial.first->second.size()), initial_value);
    auto trailing = ctx.GetServerTrailingMetadata().equal_range("x-grpc-test-echo-trailing-bin");
    ASSERT_NE(trailing.first, trailing.second) << "no x-grpc-test-echo-trailing-bin in the trailing metadata";
    EXPECT_EQ(std::string(trailing.first->second.data(), trailing.first->second.size()), trailing_value);
  };
  {
    ClientContext ctx;
    deadline(ctx);
    ctx.AddMetadata("x-grpc-test-echo-initial", initial_value);
    ctx.AddMetadata("x-grpc-test-echo-trailing-bin", trailing_value);
    SimpleResponse resp;
    grpc::Status s = stub_->UnaryCall(&ctx, large_unary_request(), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    expect_zero_payload(resp.payload(), 314159);
    check(ctx);
  }
  {
    ClientContext ctx;
    deadline(ctx);
    ctx.AddMetadata("x-grpc-test-echo-initial", initial_value);
    ctx.AddMetadata("x-grpc-test-echo-trailing-bin", trailing_value);
    auto stream = stub_->FullDuplexCall(&ctx);
    ASSERT_TRUE(stream->Write(output_request({314159}, 271828)));
    ASSERT_TRUE(stream->WritesDone());
    StreamingOutputCallResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    expect_zero_payload(resp.payload(), 314159);
    EXPECT_FALSE(stream->Read(&resp));
    grpc::Status s = stream->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    check(ctx);
  }
}

TEST_P(Interop, UnimplementedMethod) {
  ClientContext ctx;
  deadline(ctx);
  Empty resp;
  grpc::Status s = stub_->UnimplementedCall(&ctx, Empty(), &resp);
  EXPECT_STATUS(s, StatusCode::UNIMPLEMENTED);
}

TEST_P(Interop, UnimplementedService) {
  auto stub = grpc::testing::UnimplementedService::NewStub(channel_);
  ClientContext ctx;
  deadline(ctx);
  Empty resp;
  grpc::Status s = stub->UnimplementedCall(&ctx, Empty(), &resp);
  EXPECT_STATUS(s, StatusCode::UNIMPLEMENTED);
}

TEST_P(Interop, CancelAfterBegin) {
  ClientContext ctx;
  deadline(ctx);
  StreamingInputCallResponse resp;
  auto stream = stub_->StreamingInputCall(&ctx, &resp);
  ctx.TryCancel();
  grpc::Status s = stream->Finish();
  EXPECT_STATUS(s, StatusCode::CANCELLED);
  expect_server_still_answers();
}

TEST_P(Interop, CancelAfterFirstResponse) {
  ClientContext ctx;
  deadline(ctx);
  auto stream = stub_->FullDuplexCall(&ctx);
  ASSERT_TRUE(stream->Write(output_request({31415}, 27182)));
  StreamingOutputCallResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  expect_zero_payload(resp.payload(), 31415);
  ctx.TryCancel();
  grpc::Status s = stream->Finish();
  EXPECT_STATUS(s, StatusCode::CANCELLED);
  expect_server_still_answers();
}

TEST_P(Interop, TimeoutOnSleepingServer) {
  ClientContext ctx;
  deadline(ctx, 1ms);
  auto stream = stub_->FullDuplexCall(&ctx);
  stream->Write(output_request({}, 27182));  // may fail once the deadline has passed
  grpc::Status s = stream->Finish();
  EXPECT_STATUS(s, StatusCode::DEADLINE_EXCEEDED);
  expect_server_still_answers();
}

// Beyond the named cases, what the spec asks of a server.

// "Observe ResponseParameters.interval_us": each response waits its interval after the
// previous one (the sleeps add up).
TEST_P(Interop, IntervalUsDelaysEachResponse) {
  StreamingOutputCallRequest req;
  for (int i = 0; i < 3; ++i) {
    auto* p = req.add_response_parameters();
    p->set_size(10);
    p->set_interval_us(60'000);
  }
  ClientContext ctx;
  deadline(ctx);
  auto start = std::chrono::steady_clock::now();
  auto stream = stub_->StreamingOutputCall(&ctx, req);
  StreamingOutputCallResponse resp;
  std::vector<std::chrono::steady_clock::duration> at;
  while (stream->Read(&resp)) at.push_back(std::chrono::steady_clock::now() - start);
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(at.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_GE(at[i], 60ms * static_cast<int>(i + 1)) << "response " << i << " came early";
  EXPECT_LT(at[2], 2s);
}

// "UnaryCall": a response_type the server does not support (anything but COMPRESSABLE)
// gets INVALID_ARGUMENT, in unary and streaming calls alike.
TEST_P(Interop, UnsupportedResponseTypeIsInvalidArgument) {
  SimpleRequest req;
  req.set_response_type(static_cast<grpc::testing::PayloadType>(1));
  req.set_response_size(10);
  ClientContext ctx;
  deadline(ctx);
  SimpleResponse resp;
  grpc::Status s = stub_->UnaryCall(&ctx, req, &resp);
  EXPECT_STATUS(s, StatusCode::INVALID_ARGUMENT);

  StreamingOutputCallRequest sreq = output_request({10});
  sreq.set_response_type(static_cast<grpc::testing::PayloadType>(1));
  ClientContext sctx;
  deadline(sctx);
  auto stream = stub_->StreamingOutputCall(&sctx, sreq);
  StreamingOutputCallResponse sresp;
  EXPECT_FALSE(stream->Read(&sresp));
  s = stream->Finish();
  EXPECT_STATUS(s, StatusCode::INVALID_ARGUMENT);
}

INSTANTIATE_TEST_SUITE_P(Transports, Interop, ::testing::Values(Transport::kH2c, Transport::kTls),
                         [](const auto& info) { return info.param == Transport::kH2c ? "h2c" : "tls"; });

// --- the server program

TEST(InteropServer, CertificateFilesServeTlsAndSigtermLetsTheCallInFlightFinish) {
  auto pki = uringrpc::testing::write_test_pki_files();
  ServerProcess server({"--port", "0", "--use_tls", "true", "--tls_cert_file", pki.cert_path, "--tls_key_file",
                        pki.key_path, "--grace-ms", "3000"});
  EXPECT_TRUE(server.ca_path().empty()) << "given certificate files, the server must not make its own";
  auto channel = uringrpc::testing::make_tls_channel("localhost:" + std::to_string(server.port()),
                                                     uringrpc::testing::test_pki().ca_cert_pem, kServerHostOverride);
  auto stub = TestService::NewStub(channel);
  // Two responses 300 ms apart; SIGTERM lands between them.
  StreamingOutputCallRequest req;
  for (int i = 0; i < 2; ++i) {
    auto* p = req.add_response_parameters();
    p->set_size(100);
    p->set_interval_us(i ? 300'000 : 0);
  }
  ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto stream = stub->StreamingOutputCall(&ctx, req);
  StreamingOutputCallResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  auto exit_code = std::async(std::launch::async, [&] { return server.stop(SIGTERM, 5s); });
  EXPECT_TRUE(stream->Read(&resp)) << "the call in flight lost its second response";
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(exit_code.get(), 0);
  std::filesystem::remove_all(pki.dir);
}

TEST(InteropServer, SigintStopsAnIdleServerAndRemovesItsGeneratedCertificate) {
  ServerProcess server({"--use_tls"});
  ASSERT_FALSE(server.ca_path().empty());
  EXPECT_TRUE(std::filesystem::exists(server.ca_path()));
  EXPECT_EQ(server.stop(SIGINT, 5s), 0);
  EXPECT_FALSE(std::filesystem::exists(server.ca_path()));
}

TEST(InteropServer, BadFlagsExitWithUsage) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--port", "http"},
                                                                {"--use_tls=maybe"},
                                                                {"--tls_cert_file", "/nonexistent"},
                                                                {"--frobnicate"},
                                                                {"--grace-ms"},
                                                                {"--server_id", "a b"},
                                                                {"--server_id="},
                                                                {"--max_connection_age_ms", "1s"}}) {
    EXPECT_EQ(ServerProcess::run_to_exit(args, 5s), 2) << args.front();
  }
  // Unreadable certificate files are found at start, not at the first handshake.
  EXPECT_EQ(ServerProcess::run_to_exit({"--use_tls=true", "--tls_cert_file=/nonexistent/c",
                                        "--tls_key_file=/nonexistent/k"}, 5s),
            1);
}

}  // namespace
