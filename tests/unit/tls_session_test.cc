// TlsContext and TlsSession against a real OpenSSL client over memory BIOs: the bytes a
// shard's connection would move through io_uring are moved by hand here, in chunks we choose.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <climits>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../common/test_certs.h"
#include "transport/tls_context.h"
#include "transport/tls_session.h"
#include "uringrpc/tls.h"

namespace uringrpc::transport {
namespace {

using Result = TlsSession::Result;

const uringrpc::testing::TestPki& pki() { return uringrpc::testing::test_pki(); }

std::shared_ptr<TlsContext> server_context() {
  static const std::shared_ptr<TlsContext> ctx = TlsContext::create(
      TlsCredentials::from_pem(pki().server_chain_pem, pki().server_key_pem));
  return ctx;
}

std::string pem_of_new_key(const char* type) {
  EVP_PKEY* key = type == std::string("EC") ? EVP_EC_gen("P-256")
                                            : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A verifying OpenSSL client that trusts the test CA and expects "localhost".
struct ClientOptions {
  std::vector<std::string> alpn = {"h2"};
  int max_version = 0;  // 0: the newest OpenSSL has
};

class TestClient {
 public:
  explicit TestClient(const ClientOptions& opts = {}) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    BIO* ca_bio = BIO_new_mem_buf(pki().ca_cert_pem.data(), -1);
    X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca);
    X509_free(ca);
    BIO_free(ca_bio);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (opts.max_version != 0) {
      SSL_CTX_set_max_proto_version(ctx_, opts.max_version);
      if (opts.max_version < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx_, 0);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
    if (!opts.alpn.empty()) {
      std::string wire;
      for (const auto& p : opts.alpn) wire += static_cast<char>(p.size()) + p;
      // Note the inverted convention: 0 is success here.
      EXPECT_EQ(SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                                    static_cast<unsigned>(wire.size())),
                0);
    }
  }
  ~TestClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ERR_clear_error();
  }

  SSL* ssl() const { return ssl_; }
  bool handshake_done() const { return SSL_is_init_finished(ssl_); }

  // Runs the handshake as far as the bytes received so far allow; remembers a failure.
  void step() {
    if (handshake_done() || failed_) return;
    int r = SSL_do_handshake(ssl_);
    if (r != 1 && SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
      failed_ = true;
      error_reason_ = ERR_GET_REASON(ERR_peek_last_error());
    }
    ERR_clear_error();
  }
  bool failed() const { return failed_; }
  int error_reason() const { return error_reason_; }

  std::string take_output() {
    std::string s(BIO_ctrl_pending(out_), '\0');
    if (!s.empty()) BIO_read(out_, s.data(), static_cast<int>(s.size()));
    return s;
  }
  void give_input(const std::string& s) {
    if (!s.empty()) BIO_write(in_, s.data(), static_cast<int>(s.size()));
  }
  void write(const std::string& s) {
    size_t n = 0;
    ASSERT_EQ(SSL_write_ex(ssl_, s.data(), s.size(), &n), 1);
    ASSERT_EQ(n, s.size());
  }
  // Everything decryptable now; sets saw_close_notify() when the server closed.
  std::string read_available() {
    std::string out;
    char buf[16384];
    for (;;) {
      size_t n = 0;
      int r = SSL_read_ex(ssl_, buf, sizeof buf, &n);
      if (r == 1) {
        out.append(buf, n);
        continue;
      }
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_ZERO_RETURN) saw_close_notify_ = true;
      else if (e != SSL_ERROR_WANT_READ) failed_ = true;
      ERR_clear_error();
      return out;
    }
  }
  bool saw_close_notify() const { return saw_close_notify_; }

  std::string selected_alpn() const {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
  bool failed_ = false;
  bool saw_close_notify_ = false;
  int error_reason_ = 0;
};

// Everything the session has to send, read in pieces of at most `chunk` bytes.
std::string drain_session(TlsSession& s, size_t chunk = 1 << 20) {
  std::string out;
  std::vector<uint8_t> buf(chunk);
  while (size_t n = s.read_ciphertext(buf.data(), buf.size())) {
    out.append(reinterpret_cast<char*>(buf.data()), n);
  }
  EXPECT_EQ(s.pending_ciphertext(), 0u);
  return out;
}

std::string read_session_plaintext(TlsSession& s, size_t chunk = 1 << 16) {
  std::string out;
  std::vector<uint8_t> buf(chunk);
  while (size_t n = s.read_plaintext(buf.data(), buf.size())) {
    out.append(reinterpret_cast<char*>(buf.data()), n);
  }
  return out;
}

Result feed(TlsSession& s, const std::string& bytes, size_t chunk = SIZE_MAX) {
  Result r = Result::kOk;
  for (size_t i = 0; i < bytes.size() && r == Result::kOk; i += chunk) {
    size_t n = std::min(chunk, bytes.size() - i);
    r = s.feed_ciphertext(reinterpret_cast<const uint8_t*>(bytes.data()) + i, n);
  }
  return r;
}

// Moves bytes both ways until neither side has anything left to say. Returns the first
// non-kOk result of the session, if any; pumping continues so alerts reach the client.
Result pump(TestClient& c, TlsSession& s, size_t chunk = SIZE_MAX) {
  Result first = Result::kOk;
  for (int round = 0; round < 100; ++round) {
    c.step();
    std::string to_server = c.take_output();
    if (!to_server.empty() && first == Result::kOk) first = feed(s, to_server, chunk);
    std::string to_client = drain_session(s, chunk == SIZE_MAX ? 1 << 20 : chunk);
    c.give_input(to_client);
    if (to_server.empty() && to_client.empty()) break;
  }
  c.step();
  return first;
}

void write_session(TlsSession& s, const std::string& data) {
  ASSERT_TRUE(s.write_plaintext(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

// ---- TlsContext and TlsCredentials ----

TEST(TlsContext, CreatesFromTestPki) {
  auto ctx = TlsContext::create(TlsCredentials::from_pem(pki().server_chain_pem,
                                                         pki().server_key_pem));
  ASSERT_NE(ctx, nullptr);
  EXPECT_NE(ctx->native(), nullptr);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsContext, MismatchedKeyThrowsInvalidArgumentMentioningTheKey) {
  auto creds = TlsCredentials::from_pem(pki().server_chain_pem, pem_of_new_key("EC"));
  try {
    TlsContext::create(creds);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_TRUE(contains(what, "private key does not match")) << what;
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsContext, KeyOfAnotherTypeThanTheCertificateThrows) {
  auto creds = TlsCredentials::from_pem(pki().server_chain_pem, pem_of_new_key("ED25519"));
  try {
    TlsContext::create(creds);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_TRUE(contains(what, "private key does not match")) << what;
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsContext, UnparsableCertificateThrowsNamingIt) {
  std::string bad_cert = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                         "-----END CERTIFICATE-----\n";
  for (const std::string& chain : {std::string("just text"), bad_cert, std::string()}) {
    try {
      TlsContext::create(TlsCredentials::from_pem(chain, pki().server_key_pem));
      FAIL() << "expected std::invalid_argument for chain '" << chain << "'";
    } catch (const std::invalid_argument& e) {
      std::string what = e.what();
      EXPECT_TRUE(contains(what, "certificate_chain_pem")) << what;
    }
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

TEST(TlsContext, BrokenSecondCertificateInChainThrows) {
  std::string chain = pki().server_cert_pem +
                      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  try {
    TlsContext::create(TlsCredentials::from_pem(chain, pki().server_key_pem));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), "certificate #2")) << e.what();
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsContext, UnparsableKeyThrowsNamingIt) {
  try {
    TlsContext::create(TlsCredentials::from_pem(pki().server_chain_pem, "no key here"));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_TRUE(contains(what, "private_key_pem")) << what;
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsContext, EncryptedKeyIsRefusedWithoutPromptingForAPassphrase) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio, key, EVP_aes_128_cbc(),
                                     reinterpret_cast<unsigned char*>(pass), 6, nullptr, nullptr),
            1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(key);
  ASSERT_TRUE(contains(pem, "ENCRYPTED"));
  EXPECT_THROW(TlsContext::create(TlsCredentials::from_pem(pki().server_chain_pem, pem)),
               std::invalid_argument);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsCredentials, FromFilesWithMissingFileThrowsNamingIt) {
  auto files = uringrpc::testing::write_test_pki_files();
  const std::string missing = files.dir + "/no-such-file.pem";
  try {
    TlsCredentials::from_files(missing, files.key_path);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), missing)) << e.what();
  }
  try {
    TlsCredentials::from_files(files.cert_path, missing);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), missing)) << e.what();
    EXPECT_TRUE(contains(e.what(), "private key")) << e.what();
  }
  try {
    TlsCredentials::from_files(files.dir, files.key_path);  // a directory is not a file
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), files.dir)) << e.what();
  }
  std::filesystem::remove_all(files.dir);
}

TEST(TlsCredentials, FromFilesLoadsWrittenTestPkiAndServesIt) {
  auto files = uringrpc::testing::write_test_pki_files();
  auto creds = TlsCredentials::from_files(files.cert_path, files.key_path);
  std::filesystem::remove_all(files.dir);
  EXPECT_EQ(creds.certificate_chain_pem, pki().server_chain_pem);
  EXPECT_EQ(creds.private_key_pem, pki().server_key_pem);
  TlsSession s(TlsContext::create(creds));
  TestClient c;
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_TRUE(s.handshake_done());
  EXPECT_TRUE(c.handshake_done());
}

TEST(TestPki, ServerCertificateVerifiesForLocalhostAndLoopbackAddresses) {
  BIO* b = BIO_new_mem_buf(pki().server_cert_pem.data(), -1);
  X509* leaf = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  b = BIO_new_mem_buf(pki().ca_cert_pem.data(), -1);
  X509* ca = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  ASSERT_NE(leaf, nullptr);
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_host(leaf, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "::1", 0), 1);
  EXPECT_EQ(X509_check_host(leaf, "example.com", 0, 0, nullptr), 0);

  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* vctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(vctx, store, leaf, nullptr);
  EXPECT_EQ(X509_verify_cert(vctx), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx));
  X509_STORE_CTX_free(vctx);
  X509_STORE_free(store);
  X509_free(ca);
  X509_free(leaf);
  EXPECT_EQ(pki().server_chain_pem, pki().server_cert_pem + pki().ca_cert_pem);
  ERR_clear_error();
}

// ---- TlsSession ----

TEST(TlsSession, HandshakeCompletesAndSelectsH2) {
  TlsSession s(server_context());
  TestClient c;
  EXPECT_FALSE(s.handshake_done());
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_TRUE(s.handshake_done());
  EXPECT_TRUE(s.alpn_h2());
  ASSERT_TRUE(c.handshake_done());
  EXPECT_FALSE(c.failed());
  EXPECT_EQ(SSL_get_verify_result(c.ssl()), X509_V_OK);
  EXPECT_EQ(c.selected_alpn(), "h2");
  EXPECT_EQ(SSL_version(c.ssl()), TLS1_3_VERSION);
  EXPECT_TRUE(s.last_error().empty()) << s.last_error();
}

TEST(TlsSession, Tls12ClientGetsH2AndAnAeadSuite) {
  TlsSession s(server_context());
  TestClient c({.alpn = {"h2"}, .max_version = TLS1_2_VERSION});
  EXPECT_EQ(pump(c, s), Result::kOk);
  ASSERT_TRUE(s.handshake_done());
  EXPECT_TRUE(s.alpn_h2());
  EXPECT_EQ(SSL_version(c.ssl()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CIPHER_is_aead(SSL_get_current_cipher(c.ssl())), 1);
  c.write("ping over 1.2");
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_EQ(read_session_plaintext(s), "ping over 1.2");
  write_session(s, "pong over 1.2");
  pump(c, s);
  EXPECT_EQ(c.read_available(), "pong over 1.2");
}

TEST(TlsSession, H2IsSelectedWhenNotTheClientsFirstChoice) {
  TlsSession s(server_context());
  TestClient c({.alpn = {"http/1.1", "h2"}});
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_TRUE(s.alpn_h2());
  EXPECT_EQ(c.selected_alpn(), "h2");
}

TEST(TlsSession, ApplicationDataFlowsBothWaysIncludingOneMebibyte) {
  TlsSession s(server_context());
  TestClient c;
  ASSERT_EQ(pump(c, s), Result::kOk);
  ASSERT_TRUE(s.handshake_done());

  c.write("PRI * HTTP/2.0");
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_EQ(s.pending_plaintext(), 14u);
  EXPECT_EQ(read_session_plaintext(s), "PRI * HTTP/2.0");
  EXPECT_EQ(s.pending_plaintext(), 0u);

  write_session(s, "hello client");
  pump(c, s);
  EXPECT_EQ(c.read_available(), "hello client");

  const std::string big = pattern(1 << 20);
  c.write(big);
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_EQ(read_session_plaintext(s, 4096) == big, true);

  write_session(s, big);
  EXPECT_GT(s.pending_ciphertext(), big.size());  // records add framing and tags
  pump(c, s);
  EXPECT_EQ(c.read_available() == big, true);
  EXPECT_FALSE(c.failed());
}

TEST(TlsSession, DataInTheSameFlightAsFinishedIsReadableAtOnce) {
  TlsSession s(server_context());
  TestClient c;
  c.step();  // ClientHello
  ASSERT_EQ(feed(s, c.take_output()), Result::kOk);
  c.give_input(drain_session(s));
  c.step();  // TLS 1.3: the client is done after the server's first flight
  ASSERT_TRUE(c.handshake_done());
  c.write("first request");
  // One receive holding the client's Finished and its first application record.
  EXPECT_EQ(feed(s, c.take_output()), Result::kOk);
  EXPECT_TRUE(s.handshake_done());
  EXPECT_TRUE(s.alpn_h2());
  EXPECT_EQ(read_session_plaintext(s), "first request");
}

TEST(TlsSession, ClientOfferingOnlyHttp11FailsWithNoApplicationProtocol) {
  TlsSession s(server_context());
  TestClient c({.alpn = {"http/1.1"}});
  EXPECT_EQ(pump(c, s), Result::kError);
  EXPECT_FALSE(s.handshake_done());
  EXPECT_FALSE(s.alpn_h2());
  EXPECT_FALSE(s.last_error().empty());
  EXPECT_TRUE(contains(s.last_error(), "handshake failed")) << s.last_error();
  EXPECT_EQ(ERR_peek_error(), 0u);
  // The alert reached the client through pending ciphertext.
  EXPECT_TRUE(c.failed());
  EXPECT_EQ(c.error_reason(), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
}

TEST(TlsSession, ClientWithoutAlpnCompletesHandshakeWithoutH2) {
  TlsSession s(server_context());
  TestClient c({.alpn = {}});
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_TRUE(s.handshake_done());
  EXPECT_FALSE(s.alpn_h2());
  EXPECT_TRUE(c.handshake_done());
}

TEST(TlsSession, GarbageFromPeerIsAnErrorWithAReason) {
  TlsSession s(server_context());
  ERR_clear_error();
  EXPECT_EQ(feed(s, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), Result::kError);
  EXPECT_FALSE(s.last_error().empty());
  EXPECT_TRUE(contains(s.last_error(), "handshake failed")) << s.last_error();
  EXPECT_EQ(ERR_peek_error(), 0u);
  // Final: nothing more is accepted.
  EXPECT_EQ(feed(s, "more"), Result::kError);
  uint8_t byte = 'x';
  EXPECT_FALSE(s.write_plaintext(&byte, 1));
  EXPECT_FALSE(s.handshake_done());
}

TEST(TlsSession, CorruptRecordAfterHandshakeIsAnError) {
  TlsSession s(server_context());
  TestClient c;
  ASSERT_EQ(pump(c, s), Result::kOk);
  c.write("this record will be tampered with");
  std::string record = c.take_output();
  record[record.size() - 3] ^= 0x55;  // inside the AEAD tag
  ERR_clear_error();
  EXPECT_EQ(feed(s, record), Result::kError);
  EXPECT_TRUE(contains(s.last_error(), "read failed")) << s.last_error();
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_EQ(s.pending_plaintext(), 0u);
  EXPECT_GT(s.pending_ciphertext(), 0u);  // the bad_record_mac alert
}

TEST(TlsSession, ErrorQueueIsEmptyAfterEveryKindOfError) {
  ERR_clear_error();
  {
    TlsSession s(server_context());
    feed(s, std::string(64, '\x16'));  // looks like a handshake record, is not one
    EXPECT_FALSE(s.last_error().empty());
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
  {
    TlsSession s(server_context());
    TestClient c({.alpn = {"spdy/3"}});
    c.step();
    ERR_clear_error();
    EXPECT_EQ(feed(s, c.take_output()), Result::kError);
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
  {
    TlsSession s(nullptr);  // misuse is reported, not thrown
    EXPECT_EQ(feed(s, "x"), Result::kError);
    EXPECT_FALSE(s.last_error().empty());
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

TEST(TlsSession, StaleErrorOnTheThreadDoesNotFailAnotherConnection) {
  TlsSession s(server_context());
  TestClient c;
  c.step();
  std::string hello = c.take_output();
  // As if some other connection on this shard had left an error behind.
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_PACKET_LENGTH);
  EXPECT_EQ(feed(s, hello), Result::kOk);
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_EQ(pump(c, s), Result::kOk);
  EXPECT_TRUE(s.handshake_done());
}

TEST(TlsSession, BytesFedOneAtATime) {
  TlsSession s(server_context());
  TestClient c;
  EXPECT_EQ(pump(c, s, 1), Result::kOk);
  ASSERT_TRUE(s.handshake_done());
  EXPECT_TRUE(s.alpn_h2());
  // 64 KiB: several maximum-size (16 KiB) records, each arriving one byte per receive.
  const std::string big = pattern(64 * 1024);
  c.write(big);
  EXPECT_EQ(pump(c, s, 1), Result::kOk);
  EXPECT_EQ(read_session_plaintext(s, 1) == big, true);
  write_session(s, big);
  pump(c, s, 1);
  EXPECT_EQ(c.read_available() == big, true);
}

TEST(TlsSession, ClientBelowTls12IsRefused) {
  TlsSession s(server_context());
  TestClient c({.alpn = {"h2"}, .max_version = TLS1_1_VERSION});
  EXPECT_EQ(pump(c, s), Result::kError);
  EXPECT_TRUE(contains(s.last_error(), "unsupported protocol")) << s.last_error();
  EXPECT_TRUE(c.failed());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsSession, PeerCloseNotifyIsClosedAndEarlierDataStaysReadable) {
  TlsSession s(server_context());
  TestClient c;
  ASSERT_EQ(pump(c, s), Result::kOk);
  c.write("last words");
  SSL_shutdown(c.ssl());
  EXPECT_EQ(feed(s, c.take_output()), Result::kClosed);
  EXPECT_EQ(read_session_plaintext(s), "last words");
  EXPECT_EQ(feed(s, "after close"), Result::kClosed);
  // TLS 1.3 half-close: we may still answer.
  write_session(s, "goodbye");
  s.shutdown();
  c.give_input(drain_session(s));
  EXPECT_EQ(c.read_available(), "goodbye");
  EXPECT_TRUE(c.saw_close_notify());
}

TEST(TlsSession, ShutdownQueuesCloseNotifyAfterWrittenData) {
  TlsSession s(server_context());
  TestClient c;
  ASSERT_EQ(pump(c, s), Result::kOk);
  write_session(s, "final response");
  s.shutdown();
  s.shutdown();  // idempotent
  uint8_t byte = 'x';
  EXPECT_FALSE(s.write_plaintext(&byte, 1));
  pump(c, s);
  EXPECT_EQ(c.read_available(), "final response");
  EXPECT_TRUE(c.saw_close_notify());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsSession, WritesAndShutdownBeforeHandshakeAreSentWhenItCompletes) {
  TlsSession s(server_context());
  write_session(s, "server settings");
  write_session(s, " + more");
  s.shutdown();
  TestClient c;
  EXPECT_EQ(pump(c, s), Result::kOk);
  ASSERT_TRUE(s.handshake_done());
  EXPECT_EQ(c.read_available(), "server settings + more");
  EXPECT_TRUE(c.saw_close_notify());
}

// The session cache is off (it would be a lock every shard contends on); resumption must still
// work through stateless tickets, for TLS 1.3 and 1.2 alike.
TEST(TlsSession, ResumptionWorksThroughTickets) {
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SSL_SESSION* saved = nullptr;
    {
      TlsSession s(server_context());
      TestClient c({.alpn = {"h2"}, .max_version = version});
      ASSERT_EQ(pump(c, s), Result::kOk);
      c.read_available();  // TLS 1.3 tickets arrive after the handshake
      saved = SSL_get1_session(c.ssl());
      ASSERT_NE(saved, nullptr);
      // A client that frees its SSL without close_notify marks the session not resumable.
      SSL_shutdown(c.ssl());
      EXPECT_EQ(SSL_SESSION_is_resumable(saved), 1) << "version " << version;
    }
    TlsSession s(server_context());
    TestClient c({.alpn = {"h2"}, .max_version = version});
    SSL_set_session(c.ssl(), saved);
    SSL_SESSION_free(saved);
    ASSERT_EQ(pump(c, s), Result::kOk);
    EXPECT_TRUE(s.handshake_done());
    EXPECT_TRUE(s.alpn_h2());
    EXPECT_EQ(SSL_session_reused(c.ssl()), 1) << "version " << version;
  }
}

TEST(TlsSession, ContextIsSharedAcrossThreads) {
  auto ctx = server_context();
  std::vector<std::thread> threads;
  std::atomic<int> handshakes{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        TlsSession s(ctx);
        TestClient c;
        if (pump(c, s) == Result::kOk && s.alpn_h2() && ERR_peek_error() == 0) ++handshakes;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(handshakes.load(), 16);
}

TEST(TlsSession, ContextIsSharedAcrossManySessions) {
  auto ctx = server_context();
  long uses = ctx.use_count();
  {
    std::vector<std::unique_ptr<TlsSession>> sessions;
    for (int i = 0; i < 8; ++i) sessions.push_back(std::make_unique<TlsSession>(ctx));
    for (auto& s : sessions) {
      TestClient c;
      EXPECT_EQ(pump(c, *s), Result::kOk);
      EXPECT_TRUE(s->alpn_h2());
    }
    EXPECT_EQ(ctx.use_count(), uses + 8);
  }
  EXPECT_EQ(ctx.use_count(), uses);
}

}  // namespace
}  // namespace uringrpc::transport
