// Server::reload_tls() and set_tls_credentials() with the real gRPC C++ client over TLS:
// certificate A serves; after a reload to B, connections opened under A (and a stream open
// on one) keep working, new channels verify against B's CA and fail against A's only; a
// broken or missing file is refused with a clear error and B stays.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
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
using uringrpc::Task;
using uringrpc::TlsCredentials;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_server_cert;
using uringrpc::testing::make_tls_channel;
using uringrpc::testing::ServerCert;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

// Replaces `path` the way deployment tools do (write aside, rename over), so the server never
// reads half a file.
void write_file(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

class TlsReload : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = make_server_cert("reload A");
    b_ = make_server_cert("reload B");
    dir_ = uringrpc::testing::make_temp_dir();
    chain_path_ = dir_ + "/chain.pem";
    key_path_ = dir_ + "/key.pem";
    install_files(a_);

    // Two shards: new connections land on either, and both must see the new certificate.
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 2});
    server_->add_method("/e2e.Reload/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                          co_return req;
                        }));
    server_->add_method("/e2e.Reload/BidiEcho",
                        uringrpc::bidi_streaming([](uringrpc::Reader<Bytes>& reader, ServerContext& ctx) -> Task<void> {
                          while (auto m = co_await reader.next()) co_await ctx.write(std::move(*m));
                        }));
    int port = server_->add_secure_port("127.0.0.1:0", TlsCredentials::from_files(chain_path_, key_path_));
    ASSERT_GT(port, 0);
    target_ = "127.0.0.1:" + std::to_string(port);
    server_->start();
  }

  void TearDown() override {
    if (server_) server_->stop();
    std::filesystem::remove_all(dir_);
  }

  void install_files(const ServerCert& c) {
    write_file(chain_path_, c.chain_pem);
    write_file(key_path_, c.key_pem);
  }

  // A unary call on a new channel (a new connection) trusting only `ca_pem`.
  CallResult fresh_call(const std::string& ca_pem) {
    return unary_call(make_tls_channel(target_, ca_pem), "/e2e.Reload/Echo", "hello", 5s);
  }

  // New connections verify against `want`'s CA and not against `other`'s, on every shard.
  void expect_new_connections_present(const ServerCert& want, const ServerCert& other, const char* what) {
    for (int i = 0; i < 4; ++i) {
      CallResult good = fresh_call(want.ca_cert_pem);
      EXPECT_TRUE(good.ok()) << what << ", new channel #" << i << " trusting the expected CA: " << describe(good);
      CallResult bad = fresh_call(other.ca_cert_pem);
      EXPECT_EQ(bad.code, grpc::StatusCode::UNAVAILABLE)
          << what << ", new channel #" << i << " trusting the other CA: " << describe(bad);
    }
  }

  ServerCert a_, b_;
  std::string dir_, chain_path_, key_path_, target_;
  std::unique_ptr<uringrpc::Server> server_;
};

TEST_F(TlsReload, NewHandshakesUseTheReloadedCertificateWhileOpenConnectionsGoOn) {
  expect_new_connections_present(a_, b_, "before the reload");

  // A connection made under A, with a stream open across the reload.
  auto old_channel = make_tls_channel(target_, a_.ca_cert_pem);
  CallResult before = unary_call(old_channel, "/e2e.Reload/Echo", "one", 5s);
  ASSERT_TRUE(before.ok()) << describe(before);
  StreamingCall stream(old_channel, "/e2e.Reload/BidiEcho", 20s);
  ASSERT_TRUE(stream.write("ping 1"));
  ASSERT_EQ(stream.read().value_or("<none>"), "ping 1");

  install_files(b_);
  EXPECT_EQ(server_->reload_tls(), 1u);

  expect_new_connections_present(b_, a_, "after the reload");

  // The old connection still serves: its open stream and new calls on it. Had it been
  // dropped, the channel would reconnect, see B and fail, trusting only A.
  ASSERT_TRUE(stream.write("ping 2"));
  EXPECT_EQ(stream.read().value_or("<none>"), "ping 2");
  ASSERT_TRUE(stream.writes_done());
  EXPECT_FALSE(stream.read().has_value());
  CallResult stream_end = stream.finish();
  EXPECT_TRUE(stream_end.ok()) << describe(stream_end);
  for (int i = 0; i < 3; ++i) {
    CallResult after = unary_call(old_channel, "/e2e.Reload/Echo", "again", 5s);
    EXPECT_TRUE(after.ok()) << "call #" << i << " on the connection made before the reload: " << describe(after);
  }
}

TEST_F(TlsReload, BrokenCertificateFileIsRefusedAndTheCurrentCertificateStays) {
  install_files(b_);
  ASSERT_EQ(server_->reload_tls(), 1u);

  write_file(chain_path_, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  try {
    server_->reload_tls();
    ADD_FAILURE() << "reload_tls() accepted a broken certificate file";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("reload_tls: TLS credentials: cannot parse the leaf certificate"), std::string::npos) << what;
    EXPECT_NE(what.find("the current TLS certificates stay in use"), std::string::npos) << what;
  }
  expect_new_connections_present(b_, a_, "after a broken certificate file");
}

TEST_F(TlsReload, UnreadableKeyOrMismatchedKeyIsRefusedAndTheCurrentCertificateStays) {
  install_files(b_);
  ASSERT_EQ(server_->reload_tls(), 1u);

  std::filesystem::remove(key_path_);
  try {
    server_->reload_tls();
    ADD_FAILURE() << "reload_tls() went ahead without its key file";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("cannot read TLS private key file '" + key_path_ + "': No such file or directory"),
              std::string::npos)
        << what;
  }
  // A's certificate with B's key: each file alone is fine, together they are not.
  write_file(chain_path_, a_.chain_pem);
  write_file(key_path_, b_.key_pem);
  EXPECT_THROW(server_->reload_tls(), std::invalid_argument);
  expect_new_connections_present(b_, a_, "after a missing and a mismatched key");

  // Fixed files are taken again.
  install_files(a_);
  EXPECT_EQ(server_->reload_tls(), 1u);
  expect_new_connections_present(a_, b_, "after fixing the files");
}

TEST_F(TlsReload, SetTlsCredentialsReplacesTheCertificateFromPem) {
  EXPECT_EQ(server_->set_tls_credentials(TlsCredentials::from_pem(b_.chain_pem, b_.key_pem)), 1u);
  expect_new_connections_present(b_, a_, "after set_tls_credentials(B)");
  EXPECT_THROW(server_->set_tls_credentials(TlsCredentials::from_pem(a_.chain_pem, b_.key_pem)),
               std::invalid_argument);
  expect_new_connections_present(b_, a_, "after set_tls_credentials with a mismatched key");
}

TEST(TlsReloadInsecure, ServerWithoutSecurePortsReloadsNothing) {
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  server.add_insecure_port("127.0.0.1:0");
  EXPECT_EQ(server.reload_tls(), 0u);
  const auto& pki = uringrpc::testing::test_pki();
  EXPECT_EQ(server.set_tls_credentials(TlsCredentials::from_pem(pki.server_chain_pem, pki.server_key_pem)), 0u);
}

}  // namespace
