// TlsCredentials::sni_certificates over real sockets: which certificate a client is shown for
// the server name it sends (exact, wildcard, any case, none, no match), seen by an OpenSSL
// client offering ALPN h2 and by the real gRPC C++ client (GRPC_SSL_TARGET_NAME_OVERRIDE_ARG
// sets its SNI); reload_tls() re-reads SNI certificate files too; bad SNI settings throw.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::SniCertificate;
using uringrpc::Task;
using uringrpc::TlsCredentials;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_server_cert;
using uringrpc::testing::make_tls_channel;
using uringrpc::testing::ServerCert;
using uringrpc::testing::unary_call;

struct Handshake {
  std::string common_name;  // of the certificate the server presented; "" if none
  std::string alpn;
  std::string error;
};

// A TLS handshake with an OpenSSL client over a real TCP connection: sends `server_name` as
// SNI (none when empty), offers ALPN h2, verifies nothing, reports what the server showed.
Handshake handshake(int port, const std::string& server_name) {
  Handshake out;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    out.error = "connect failed";
    return out;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (!server_name.empty()) SSL_set_tlsext_host_name(ssl, server_name.c_str());
  if (SSL_connect(ssl) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    out.error = buf;
  } else {
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
      char cn[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
      out.common_name = cn;
      X509_free(cert);
    }
    const unsigned char* proto = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &proto, &len);
    out.alpn.assign(reinterpret_cast<const char*>(proto), len);
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return out;
}

class TlsSni : public ::testing::Test {
 protected:
  void SetUp() override {
    default_ = make_server_cert("sni default");
    api_ = make_server_cert("sni api", "DNS:api.sni.test");
    wild_ = make_server_cert("sni wildcard", "DNS:*.wild.sni.test");
    dir_ = uringrpc::testing::make_temp_dir();
    write(dir_ + "/api-chain.pem", api_.chain_pem);
    write(dir_ + "/api-key.pem", api_.key_pem);

    TlsCredentials creds = TlsCredentials::from_pem(default_.chain_pem, default_.key_pem);
    creds.sni_certificates.push_back(SniCertificate::from_files("api.sni.test", dir_ + "/api-chain.pem", dir_ + "/api-key.pem"));
    creds.sni_certificates.push_back({"*.wild.sni.test", wild_.chain_pem, wild_.key_pem, "", ""});

    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 2});
    server_->add_method("/e2e.Sni/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> { co_return req; }));
    port_ = server_->add_secure_port("127.0.0.1:0", creds);
    ASSERT_GT(port_, 0);
    server_->start();
  }

  void TearDown() override {
    server_->stop();
    std::filesystem::remove_all(dir_);
  }

  static void write(const std::string& path, const std::string& content) {
    std::ofstream(path + ".tmp", std::ios::binary | std::ios::trunc) << content;
    std::filesystem::rename(path + ".tmp", path);
  }

  // CN of the certificate shown for `server_name`, after checking that h2 was selected.
  std::string shown_for(const std::string& server_name) {
    Handshake h = handshake(port_, server_name);
    EXPECT_EQ(h.error, "") << "SNI '" << server_name << "'";
    EXPECT_EQ(h.alpn, "h2") << "SNI '" << server_name << "'";
    return h.common_name;
  }

  CallResult grpc_call(const std::string& ca_pem, const std::string& name_override) {
    return unary_call(make_tls_channel("127.0.0.1:" + std::to_string(port_), ca_pem, name_override),
                      "/e2e.Sni/Echo", "hi", 5s);
  }

  ServerCert default_, api_, wild_;
  std::string dir_;
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsSni, EachServerNameGetsItsCertificateAndTheRestTheDefault) {
  EXPECT_EQ(shown_for(""), "sni default") << "no SNI";
  EXPECT_EQ(shown_for("api.sni.test"), "sni api");
  EXPECT_EQ(shown_for("API.Sni.Test"), "sni api") << "server names ignore ASCII case";
  EXPECT_EQ(shown_for("a.wild.sni.test"), "sni wildcard");
  EXPECT_EQ(shown_for("b.wild.sni.test"), "sni wildcard");
  EXPECT_EQ(shown_for("wild.sni.test"), "sni default") << "a wildcard needs one label in front";
  EXPECT_EQ(shown_for("a.b.wild.sni.test"), "sni default") << "a wildcard covers one label only";
  EXPECT_EQ(shown_for("unknown.example"), "sni default") << "no match";
  EXPECT_EQ(shown_for("xapi.sni.test"), "sni default");
}

TEST_F(TlsSni, GrpcClientVerifiesTheCertificateOfTheNameItAsksFor) {
  CallResult api = grpc_call(api_.ca_cert_pem, "api.sni.test");
  EXPECT_TRUE(api.ok()) << describe(api);
  CallResult api_wrong_ca = grpc_call(default_.ca_cert_pem, "api.sni.test");
  EXPECT_EQ(api_wrong_ca.code, grpc::StatusCode::UNAVAILABLE) << describe(api_wrong_ca);

  CallResult wild = grpc_call(wild_.ca_cert_pem, "x.wild.sni.test");
  EXPECT_TRUE(wild.ok()) << describe(wild);

  // gRPC sends no SNI for an IP address: the default certificate (its SANs name 127.0.0.1).
  CallResult plain = grpc_call(default_.ca_cert_pem, "");
  EXPECT_TRUE(plain.ok()) << describe(plain);
  // A name no entry matches that the default certificate covers (*.test.google.fr).
  CallResult unmatched = grpc_call(default_.ca_cert_pem, "foo.test.google.fr");
  EXPECT_TRUE(unmatched.ok()) << describe(unmatched);
}

TEST_F(TlsSni, ReloadRereadsTheSniCertificateFiles) {
  ServerCert api2 = make_server_cert("sni api 2", "DNS:api.sni.test");
  write(dir_ + "/api-chain.pem", api2.chain_pem);
  write(dir_ + "/api-key.pem", api2.key_pem);
  EXPECT_EQ(shown_for("api.sni.test"), "sni api") << "files are read only on reload";
  EXPECT_EQ(server_->reload_tls(), 1u);
  EXPECT_EQ(shown_for("api.sni.test"), "sni api 2");
  EXPECT_EQ(shown_for("a.wild.sni.test"), "sni wildcard") << "PEM-only entries stay";
  EXPECT_EQ(shown_for(""), "sni default");

  // A broken SNI key refuses the whole reload.
  write(dir_ + "/api-key.pem", default_.key_pem);
  try {
    server_->reload_tls();
    ADD_FAILURE() << "a mismatched SNI key was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("the SNI certificate for 'api.sni.test'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(shown_for("api.sni.test"), "sni api 2");
}

TEST(TlsSniConfig, BadServerNamesAndDuplicatesAreRefusedWhenThePortIsAdded) {
  ServerCert c = make_server_cert("sni config");
  auto with_names = [&](std::vector<std::string> names) {
    TlsCredentials creds = TlsCredentials::from_pem(c.chain_pem, c.key_pem);
    for (auto& n : names) creds.sni_certificates.push_back({n, c.chain_pem, c.key_pem, "", ""});
    uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
    try {
      server.add_secure_port("127.0.0.1:0", creds);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(with_names({"a.test", "*.b.test"}), "");
  for (const char* bad : {"", "*.", "a..test", ".a.test", "a.*.test", "**.test", "a test"}) {
    EXPECT_NE(with_names({bad}).find("it must be a DNS name"), std::string::npos) << "'" << bad << "'";
  }
  EXPECT_NE(with_names({"a.test", "A.TEST"}).find("names 'A.TEST' twice"), std::string::npos);
  // An SNI key not matching its certificate names the entry.
  TlsCredentials creds = TlsCredentials::from_pem(c.chain_pem, c.key_pem);
  creds.sni_certificates.push_back({"k.test", c.chain_pem, make_server_cert("other").key_pem, "", ""});
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  try {
    server.add_secure_port("127.0.0.1:0", creds);
    ADD_FAILURE() << "a mismatched SNI key was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("the SNI certificate for 'k.test': the private key does not match"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
