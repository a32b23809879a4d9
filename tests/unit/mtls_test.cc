// Mutual TLS below the socket: TlsCredentials' client-certificate settings rejected at
// configuration time, and TlsSession's handshake and captured PeerIdentity against an
// OpenSSL client with and without a certificate, over memory BIOs.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <climits>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/test_certs.h"
#include "transport/tls_context.h"
#include "transport/tls_session.h"
#include "uringrpc/tls.h"

namespace uringrpc::transport {
namespace {

using Result = TlsSession::Result;
namespace names = uringrpc::testing;

const uringrpc::testing::TestPki& pki() { return uringrpc::testing::test_pki(); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TlsCredentials credentials(ClientCertificate mode, std::string client_ca_pem) {
  auto creds = TlsCredentials::from_pem(pki().server_chain_pem, pki().server_key_pem);
  creds.client_certificate = mode;
  creds.client_ca_pem = std::move(client_ca_pem);
  return creds;
}

// The what() of the std::invalid_argument that creating a context from `creds` throws.
std::string creation_error(const TlsCredentials& creds) {
  try {
    TlsContext::create(creds);
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL errors left on the thread";
    return e.what();
  }
  ADD_FAILURE() << "expected std::invalid_argument";
  return "";
}

// ---- configuration

TEST(MtlsConfig, DefaultsAreNoClientCertificateAndNoCa) {
  TlsCredentials creds = TlsCredentials::from_pem(pki().server_chain_pem, pki().server_key_pem);
  EXPECT_EQ(creds.client_certificate, ClientCertificate::kNone);
  EXPECT_TRUE(creds.client_ca_pem.empty());
}

TEST(MtlsConfig, RequireOrRequestWithoutCaThrowsNamingModeAndField) {
  std::string e = creation_error(credentials(ClientCertificate::kRequire, ""));
  EXPECT_TRUE(contains(e, "kRequire")) << e;
  EXPECT_TRUE(contains(e, "client_ca_pem is empty")) << e;
  e = creation_error(credentials(ClientCertificate::kRequest, ""));
  EXPECT_TRUE(contains(e, "kRequest")) << e;
  EXPECT_TRUE(contains(e, "client_ca_pem is empty")) << e;
}

TEST(MtlsConfig, CaWithoutAnyCertificateThrows) {
  std::string e = creation_error(credentials(ClientCertificate::kRequire, "not a certificate"));
  EXPECT_TRUE(contains(e, "client_ca_pem holds no PEM certificate")) << e;
}

TEST(MtlsConfig, UnparsableCaCertificateThrowsNamingWhichOne) {
  std::string broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  std::string e = creation_error(credentials(ClientCertificate::kRequest, broken));
  EXPECT_TRUE(contains(e, "certificate #1 in client_ca_pem")) << e;
  e = creation_error(credentials(ClientCertificate::kRequire, pki().ca_cert_pem + broken));
  EXPECT_TRUE(contains(e, "certificate #2 in client_ca_pem")) << e;
}

TEST(MtlsConfig, CaWithNoneModeThrowsRatherThanSilentlyAcceptingEveryone) {
  std::string e = creation_error(credentials(ClientCertificate::kNone, pki().ca_cert_pem));
  EXPECT_TRUE(contains(e, "client_ca_pem is set but client_certificate is kNone")) << e;
}

TEST(MtlsConfig, UnknownModeValueThrows) {
  std::string e = creation_error(credentials(static_cast<ClientCertificate>(7), pki().ca_cert_pem));
  EXPECT_TRUE(contains(e, "unknown value")) << e;
}

TEST(MtlsConfig, SeveralCaCertificatesAreAccepted) {
  auto ctx = TlsContext::create(
      credentials(ClientCertificate::kRequire, pki().ca_cert_pem + pki().other_ca_cert_pem));
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(MtlsConfig, LoadClientCaFileReadsItOrThrowsNamingIt) {
  auto files = uringrpc::testing::write_test_pki_files();
  TlsCredentials creds = TlsCredentials::from_files(files.cert_path, files.key_path);
  creds.load_client_ca_file(files.ca_path);
  EXPECT_EQ(creds.client_ca_pem, pki().ca_cert_pem);
  const std::string missing = files.dir + "/no-such-ca.pem";
  try {
    creds.load_client_ca_file(missing);
    ADD_FAILURE() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), missing)) << e.what();
    EXPECT_TRUE(contains(e.what(), "client CA")) << e.what();
  }
  std::filesystem::remove_all(files.dir);
}

// ---- handshakes

std::shared_ptr<TlsContext> context(ClientCertificate mode) {
  return TlsContext::create(
      credentials(mode, mode == ClientCertificate::kNone ? "" : pki().ca_cert_pem));
}

// An OpenSSL client trusting the test CA, presenting `cert_pem`/`key_pem` if not empty.
class Client {
 public:
  Client(const std::string& cert_pem, const std::string& key_pem, int max_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    BIO* b = BIO_new_mem_buf(pki().ca_cert_pem.data(), -1);
    X509* ca = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca);
    X509_free(ca);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (max_version != 0) SSL_CTX_set_max_proto_version(ctx_, max_version);
    if (!cert_pem.empty()) {
      b = BIO_new_mem_buf(cert_pem.data(), -1);
      X509* cert = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
      BIO_free(b);
      b = BIO_new_mem_buf(key_pem.data(), -1);
      EVP_PKEY* key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
      BIO_free(b);
      EXPECT_EQ(SSL_CTX_use_certificate(ctx_, cert), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_, key), 1);
      X509_free(cert);
      EVP_PKEY_free(key);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    static const unsigned char kH2[] = {2, 'h', '2'};
    SSL_set_alpn_protos(ssl_, kH2, sizeof kH2);
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ERR_clear_error();
  }
  SSL* ssl() const { return ssl_; }

  // Moves bytes both ways until both sides are quiet; returns the server's first non-kOk.
  // The client also reads after its handshake: a TLS 1.3 client learns of a refused
  // certificate only then, and picks up session tickets the same way.
  Result pump(TlsSession& s) {
    Result first = Result::kOk;
    for (int round = 0; round < 50; ++round) {
      step();
      std::string to_server(BIO_ctrl_pending(out_), '\0');
      if (!to_server.empty()) BIO_read(out_, to_server.data(), static_cast<int>(to_server.size()));
      if (!to_server.empty() && first == Result::kOk) {
        first = s.feed_ciphertext(reinterpret_cast<const uint8_t*>(to_server.data()), to_server.size());
      }
      std::string to_client(s.pending_ciphertext(), '\0');
      to_client.resize(s.read_ciphertext(reinterpret_cast<uint8_t*>(to_client.data()), to_client.size()));
      if (!to_client.empty()) BIO_write(in_, to_client.data(), static_cast<int>(to_client.size()));
      if (to_server.empty() && to_client.empty()) break;
    }
    step();
    return first;
  }

 private:
  void step() {
    if (!SSL_is_init_finished(ssl_)) {
      SSL_do_handshake(ssl_);
    } else {
      char buf[256];
      size_t n = 0;
      while (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) {
      }
    }
    ERR_clear_error();
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

void expect_test_client_identity(const PeerIdentity* id) {
  ASSERT_NE(id, nullptr);
  EXPECT_TRUE(id->verified);
  EXPECT_EQ(id->subject, names::kClientSubject);
  EXPECT_EQ(id->dns_sans, std::vector<std::string>{names::kClientDnsSan});
  EXPECT_EQ(id->uri_sans, std::vector<std::string>{names::kClientUriSan});
  EXPECT_EQ(id->ip_sans, (std::vector<std::string>{names::kClientIpv4San, names::kClientIpv6San}));
  EXPECT_EQ(id->certificate_pem, pki().client_cert_pem);
}

TEST(MtlsSession, RequireWithRightCertificateCapturesTheIdentityOverTls13And12) {
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    TlsSession s(context(ClientCertificate::kRequire));
    Client c(pki().client_cert_pem, pki().client_key_pem, version);
    ASSERT_EQ(c.pump(s), Result::kOk) << s.last_error();
    ASSERT_TRUE(s.handshake_done());
    expect_test_client_identity(s.peer_identity().get());
  }
}

TEST(MtlsSession, RequireWithoutCertificateFailsTheHandshake) {
  TlsSession s(context(ClientCertificate::kRequire));
  Client c("", "");
  EXPECT_EQ(c.pump(s), Result::kError);
  EXPECT_FALSE(s.handshake_done());
  EXPECT_TRUE(contains(s.last_error(), "certificate")) << s.last_error();
  EXPECT_EQ(s.peer_identity(), nullptr);
}

TEST(MtlsSession, CertificateFromAnotherCaFailsTheHandshakeInBothModes) {
  for (auto mode : {ClientCertificate::kRequire, ClientCertificate::kRequest}) {
    TlsSession s(context(mode));
    Client c(pki().other_client_cert_pem, pki().other_client_key_pem);
    EXPECT_EQ(c.pump(s), Result::kError);
    EXPECT_FALSE(s.handshake_done());
    EXPECT_TRUE(contains(s.last_error(), "certificate verify failed")) << s.last_error();
    EXPECT_EQ(s.peer_identity(), nullptr);
  }
}

TEST(MtlsSession, ServerCertificateIsNotAcceptedAsAClientCertificate) {
  // Same CA, but its extended key usage says serverAuth only.
  TlsSession s(context(ClientCertificate::kRequire));
  Client c(pki().server_cert_pem, pki().server_key_pem);
  EXPECT_EQ(c.pump(s), Result::kError);
}

TEST(MtlsSession, RequestWithoutCertificateCompletesWithoutIdentity) {
  TlsSession s(context(ClientCertificate::kRequest));
  Client c("", "");
  ASSERT_EQ(c.pump(s), Result::kOk) << s.last_error();
  EXPECT_TRUE(s.handshake_done());
  EXPECT_EQ(s.peer_identity(), nullptr);
}

TEST(MtlsSession, RequestWithRightCertificateCapturesTheIdentity) {
  TlsSession s(context(ClientCertificate::kRequest));
  Client c(pki().client_cert_pem, pki().client_key_pem);
  ASSERT_EQ(c.pump(s), Result::kOk) << s.last_error();
  expect_test_client_identity(s.peer_identity().get());
}

TEST(MtlsSession, NoneModeNeverAsksSoAClientCertificateIsNotSeen) {
  TlsSession s(context(ClientCertificate::kNone));
  Client c(pki().client_cert_pem, pki().client_key_pem);
  ASSERT_EQ(c.pump(s), Result::kOk) << s.last_error();
  EXPECT_TRUE(s.handshake_done());
  EXPECT_EQ(s.peer_identity(), nullptr);
}

TEST(MtlsSession, ResumedSessionKeepsTheClientIdentity) {
  auto ctx = context(ClientCertificate::kRequire);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    SSL_SESSION* saved = nullptr;
    {
      TlsSession s(ctx);
      Client c(pki().client_cert_pem, pki().client_key_pem, version);
      ASSERT_EQ(c.pump(s), Result::kOk) << s.last_error();
      saved = SSL_get1_session(c.ssl());
      ASSERT_NE(saved, nullptr);
      SSL_shutdown(c.ssl());
    }
    TlsSession s(ctx);
    Client c(pki().client_cert_pem, pki().client_key_pem, version);
    SSL_set_session(c.ssl(), saved);
    SSL_SESSION_free(saved);
    ASSERT_EQ(c.pump(s), Result::kOk) << s.last_error();
    ASSERT_EQ(SSL_session_reused(c.ssl()), 1);
    expect_test_client_identity(s.peer_identity().get());
  }
}

}  // namespace
}  // namespace uringrpc::transport
