// End-to-end TLS with the real gRPC client: a secure port serves unary and 1 MiB streaming
// calls, a client trusting another CA is refused, plain h2c on the TLS port fails without
// harming the server, and a taken secure port is a BindError.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::make_tls_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::test_pki;
using uringrpc::testing::unary_call;

// A self-signed CA unrelated to test_pki(): a client trusting only it must reject the server.
std::string make_unrelated_ca_pem() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) throw std::runtime_error("EVP_EC_gen failed");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Unrelated Test CA"),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  X509_sign(cert, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return pem;
}

std::string pattern(uint32_t index, size_t size) {
  std::string s(size, '\0');
  for (size_t j = 0; j < size; ++j) s[j] = static_cast<char>((j * 61u + index * 389u + (j >> 10)) & 0xffu);
  return s;
}

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});
    server_->add_method("/e2e.Tls/Unary", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                          co_return Bytes("tls:" + req.str());
                        }));
    // Bidi: collects every request, then sends each back followed by one of its own
    // (interleaving is covered on h2c; here the point is 1 MiB both ways through TLS).
    server_->add_method("/e2e.Tls/Stream", uringrpc::bidi_streaming([](uringrpc::Reader<Bytes>& reader,
                                                                       ServerContext& ctx) -> Task<void> {
                          std::vector<Bytes> all;
                          while (auto m = co_await reader.next()) all.push_back(std::move(*m));
                          uint32_t i = 0;
                          for (auto& m : all) {
                            co_await ctx.write(std::move(m));
                            co_await ctx.write(Bytes(pattern(100 + i++, 1u << 20)));
                          }
                        }));
    port_ = server_->add_secure_port("127.0.0.1:0", uringrpc::TlsCredentials::from_pem(
                                                        test_pki().server_chain_pem, test_pki().server_key_pem));
    ASSERT_GT(port_, 0);
    server_->start();
    target_ = "127.0.0.1:" + std::to_string(port_);
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  std::shared_ptr<grpc::Channel> good_channel() {
    return make_tls_channel(target_, test_pki().ca_cert_pem, "localhost");
  }

  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::string target_;
};

TEST_F(Tls, UnaryCallOverTls) {
  auto channel = good_channel();
  CallResult r = unary_call(channel, "/e2e.Tls/Unary", "hello", 5s);
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "tls:hello");
}

TEST_F(Tls, UnaryCallOverTlsToLocalhostName) {
  // The certificate's DNS SAN, no override: "localhost" may resolve to ::1 first, which
  // the server does not listen on; the client moves on to 127.0.0.1.
  auto channel = make_tls_channel("localhost:" + std::to_string(port_), test_pki().ca_cert_pem);
  CallResult r = unary_call(channel, "/e2e.Tls/Unary", "by-name", 5s);
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "tls:by-name");
}

TEST_F(Tls, StreamingOneMiBMessagesBothWaysOverTls) {
  auto channel = good_channel();
  StreamingCall call(channel, "/e2e.Tls/Stream", 20s);
  constexpr uint32_t kCount = 4;
  for (uint32_t i = 0; i < kCount; ++i) ASSERT_TRUE(call.write(pattern(i, 1u << 20))) << "write #" << i;
  ASSERT_TRUE(call.writes_done());
  uint32_t n = 0;
  while (auto m = call.read()) {
    uint32_t index = n % 2 == 0 ? n / 2 : 100 + n / 2;
    EXPECT_TRUE(*m == pattern(index, 1u << 20)) << "response #" << n << " differs (size " << m->size() << ")";
    ++n;
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(n, 2 * kCount);
}

TEST_F(Tls, ClientTrustingAnotherCaFailsWithUnavailable) {
  auto channel = make_tls_channel(target_, make_unrelated_ca_pem(), "localhost");
  auto start = Clock::now();
  CallResult r = unary_call(channel, "/e2e.Tls/Unary", "x", 5s);
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
  EXPECT_LT(Clock::now() - start, 4s);
  // The server is unharmed.
  CallResult ok = unary_call(good_channel(), "/e2e.Tls/Unary", "after", 5s);
  ASSERT_TRUE(ok.ok()) << describe(ok);
}

TEST_F(Tls, PlaintextH2cToTlsPortFailsAndServerKeepsServingTls) {
  auto plain = make_channel(target_);
  auto start = Clock::now();
  CallResult r = unary_call(plain, "/e2e.Tls/Unary", "plain", 3s);
  EXPECT_FALSE(r.ok()) << "an h2c call succeeded on a TLS port: " << describe(r);
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
  EXPECT_LT(Clock::now() - start, 3s) << "the server should refuse plaintext at once, not at the handshake timeout";
  for (int i = 0; i < 3; ++i) {
    CallResult ok = unary_call(good_channel(), "/e2e.Tls/Unary", "after-plain", 5s);
    ASSERT_TRUE(ok.ok()) << describe(ok);
    EXPECT_EQ(ok.responses.at(0), "tls:after-plain");
  }
}

TEST_F(Tls, SecurePortAlreadyTakenByAnotherServerIsBindError) {
  uringrpc::Server other(uringrpc::ServerOptions{.shards = 1});
  auto creds = uringrpc::TlsCredentials::from_pem(test_pki().server_chain_pem, test_pki().server_key_pem);
  EXPECT_THROW(other.add_secure_port("127.0.0.1:" + std::to_string(port_), creds), uringrpc::BindError);
  // The first server still owns and serves its port.
  CallResult ok = unary_call(good_channel(), "/e2e.Tls/Unary", "mine", 5s);
  ASSERT_TRUE(ok.ok()) << describe(ok);
}

TEST_F(Tls, SecurePortTakenByPlainListeningSocketIsBindError) {
  // A plain POSIX listener without SO_REUSEPORT holds the address first.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int taken = ntohs(addr.sin_port);
  uringrpc::Server other(uringrpc::ServerOptions{.shards = 1});
  auto creds = uringrpc::TlsCredentials::from_pem(test_pki().server_chain_pem, test_pki().server_key_pem);
  try {
    other.add_secure_port("127.0.0.1:" + std::to_string(taken), creds);
    ADD_FAILURE() << "add_secure_port on a taken port did not throw";
  } catch (const uringrpc::BindError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(taken)), std::string::npos)
        << "what() should name the address: " << e.what();
  }
  ::close(fd);
}

}  // namespace
