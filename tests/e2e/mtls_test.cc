// End-to-end mutual TLS with the real gRPC client: which client certificates each
// ClientCertificate mode refuses or accepts, and what the handler then sees through
// ServerContext::peer_identity() (echoed back in the response and compared here).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ClientCertificate;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::make_mtls_channel;
using uringrpc::testing::make_tls_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::test_pki;
using uringrpc::testing::unary_call;
namespace pki_names = uringrpc::testing;

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The handler's view of the identity, in one comparable line.
std::string identity_line(const uringrpc::PeerIdentity* id) {
  if (id == nullptr) return "none";
  std::string pem = id->certificate_pem == test_pki().client_cert_pem ? "client" : "other";
  return std::string("verified=") + (id->verified ? "yes" : "no") + " subject=" + id->subject +
         " dns=" + join(id->dns_sans) + " uri=" + join(id->uri_sans) + " ip=" + join(id->ip_sans) +
         " pem=" + pem;
}

std::string expected_client_line() {
  return std::string("verified=yes subject=") + pki_names::kClientSubject +
         " dns=" + pki_names::kClientDnsSan + " uri=" + pki_names::kClientUriSan + " ip=" +
         pki_names::kClientIpv4San + "," + pki_names::kClientIpv6San + " pem=client";
}

uringrpc::TlsCredentials credentials(ClientCertificate mode) {
  auto creds = uringrpc::TlsCredentials::from_pem(test_pki().server_chain_pem, test_pki().server_key_pem);
  creds.client_certificate = mode;
  if (mode != ClientCertificate::kNone) creds.client_ca_pem = test_pki().ca_cert_pem;
  return creds;
}

// One server with a secure port in the given mode and an insecure port beside it.
class MtlsServer {
 public:
  explicit MtlsServer(ClientCertificate mode) : server_(uringrpc::ServerOptions{.shards = 1}) {
    server_.add_method("/e2e.Mtls/Whoami", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                         co_return Bytes(identity_line(ctx.peer_identity()));
                       }));
    // Server streaming: the identity before and after a pause, to see it stays put.
    server_.add_method("/e2e.Mtls/WhoamiTwice",
                       uringrpc::server_streaming([](Bytes, ServerContext& ctx) -> uringrpc::Stream<Bytes> {
                         co_yield Bytes(identity_line(ctx.peer_identity()));
                         co_await uringrpc::sleep_for(20ms);
                         co_yield Bytes(identity_line(ctx.peer_identity()));
                       }));
    secure_target_ = "127.0.0.1:" + std::to_string(server_.add_secure_port("127.0.0.1:0", credentials(mode)));
    insecure_target_ = "127.0.0.1:" + std::to_string(server_.add_insecure_port("127.0.0.1:0"));
    server_.start();
  }
  ~MtlsServer() { server_.stop(); }

  std::shared_ptr<grpc::Channel> with_client_cert() const {
    return make_mtls_channel(secure_target_, test_pki().ca_cert_pem, test_pki().client_cert_pem,
                             test_pki().client_key_pem, "localhost");
  }
  std::shared_ptr<grpc::Channel> with_other_ca_cert() const {
    return make_mtls_channel(secure_target_, test_pki().ca_cert_pem, test_pki().other_client_cert_pem,
                             test_pki().other_client_key_pem, "localhost");
  }
  std::shared_ptr<grpc::Channel> without_client_cert() const {
    return make_tls_channel(secure_target_, test_pki().ca_cert_pem, "localhost");
  }
  std::shared_ptr<grpc::Channel> insecure() const { return make_channel(insecure_target_); }

 private:
  uringrpc::Server server_;
  std::string secure_target_;
  std::string insecure_target_;
};

CallResult whoami(const std::shared_ptr<grpc::Channel>& channel) {
  return unary_call(channel, "/e2e.Mtls/Whoami", "", 5s);
}

// ---- kRequire

TEST(Mtls, RequireRefusesClientWithoutCertificateWithUnavailable) {
  MtlsServer server(ClientCertificate::kRequire);
  CallResult r = whoami(server.without_client_cert());
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
  // The refusal is per connection: a client with a certificate is still served.
  CallResult ok = whoami(server.with_client_cert());
  ASSERT_TRUE(ok.ok()) << describe(ok);
}

TEST(Mtls, RequireRefusesCertificateFromAnotherCaWithUnavailable) {
  MtlsServer server(ClientCertificate::kRequire);
  CallResult r = whoami(server.with_other_ca_cert());
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
  CallResult ok = whoami(server.with_client_cert());
  ASSERT_TRUE(ok.ok()) << describe(ok);
}

TEST(Mtls, RequireAcceptsRightCertificateAndHandlerSeesSubjectSansAndVerified) {
  MtlsServer server(ClientCertificate::kRequire);
  CallResult r = whoami(server.with_client_cert());
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), expected_client_line());
}

TEST(Mtls, IdentityIsTheSameForEveryCallOnAConnectionAndThroughoutACall) {
  MtlsServer server(ClientCertificate::kRequire);
  auto channel = server.with_client_cert();
  for (int i = 0; i < 3; ++i) {
    CallResult r = whoami(channel);
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(r.responses.at(0), expected_client_line()) << "call #" << i;
  }
  StreamingCall call(channel, "/e2e.Mtls/WhoamiTwice", 5s);
  ASSERT_TRUE(call.write_last(""));
  std::vector<std::string> seen;
  while (auto m = call.read()) seen.push_back(*m);
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], expected_client_line());
  EXPECT_EQ(seen[1], expected_client_line());
}

// ---- kRequest

TEST(Mtls, RequestAcceptsClientWithoutCertificateAndIdentityIsAbsent) {
  MtlsServer server(ClientCertificate::kRequest);
  CallResult r = whoami(server.without_client_cert());
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "none");
}

TEST(Mtls, RequestAcceptsRightCertificateAndIdentityIsVerified) {
  MtlsServer server(ClientCertificate::kRequest);
  CallResult r = whoami(server.with_client_cert());
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), expected_client_line());
}

TEST(Mtls, RequestRefusesCertificateFromAnotherCaRatherThanTreatingItAsAbsent) {
  MtlsServer server(ClientCertificate::kRequest);
  CallResult r = whoami(server.with_other_ca_cert());
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
}

// ---- no client certificates

TEST(Mtls, NoneModeIdentityIsAbsentEvenWhenTheClientHasACertificate) {
  MtlsServer server(ClientCertificate::kNone);
  for (const auto& channel : {server.without_client_cert(), server.with_client_cert()}) {
    CallResult r = whoami(channel);
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(r.responses.at(0), "none");
  }
}

TEST(Mtls, InsecurePortIdentityIsAbsent) {
  MtlsServer server(ClientCertificate::kRequire);
  CallResult r = whoami(server.insecure());
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "none");
}

}  // namespace
