// Builds the shared server SSL_CTX from PEM credentials (and loads those credentials from
// files), including the client-certificate policy of mutual TLS. Runs at configuration time on the application's thread, so errors throw
// std::invalid_argument; the per-connection I/O path lives in tls_session.cc and never throws.
#include "transport/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace uringrpc {

TlsCredentials TlsCredentials::from_pem(std::string cert_chain_pem, std::string key_pem) {
  TlsCredentials c;
  c.certificate_chain_pem = std::move(cert_chain_pem);
  c.private_key_pem = std::move(key_pem);
  return c;
}

namespace {

std::string read_whole_file(const std::string& path, const char* what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw std::invalid_argument(std::string("cannot read TLS ") + what + " file '" + path +
                                "': " + std::strerror(errno));
  }
  std::string out;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  // fopen succeeds on a directory; the read is what fails (EISDIR).
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) {
    throw std::invalid_argument(std::string("cannot read TLS ") + what + " file '" + path +
                                "': " + std::strerror(err));
  }
  return out;
}

}  // namespace

TlsCredentials TlsCredentials::from_files(const std::string& cert_chain_path,
                                          const std::string& key_path) {
  std::string chain = read_whole_file(cert_chain_path, "certificate chain");
  std::string key = read_whole_file(key_path, "private key");
  TlsCredentials c = from_pem(std::move(chain), std::move(key));
  c.certificate_chain_file = cert_chain_path;
  c.private_key_file = key_path;
  return c;
}

void TlsCredentials::load_client_ca_file(const std::string& path) {
  client_ca_pem = read_whole_file(path, "client CA");
  client_ca_file = path;
}

SniCertificate SniCertificate::from_files(std::string server_name, const std::string& cert_chain_path,
                                          const std::string& key_path) {
  SniCertificate c;
  c.server_name = std::move(server_name);
  c.certificate_chain_pem = read_whole_file(cert_chain_path, "certificate chain");
  c.private_key_pem = read_whole_file(key_path, "private key");
  c.certificate_chain_file = cert_chain_path;
  c.private_key_file = key_path;
  return c;
}

TlsCredentials TlsCredentials::reread_files() const {
  TlsCredentials c = *this;
  if (!c.certificate_chain_file.empty()) {
    c.certificate_chain_pem = read_whole_file(c.certificate_chain_file, "certificate chain");
  }
  if (!c.private_key_file.empty()) c.private_key_pem = read_whole_file(c.private_key_file, "private key");
  if (!c.client_ca_file.empty()) c.client_ca_pem = read_whole_file(c.client_ca_file, "client CA");
  for (auto& sni : c.sni_certificates) {
    if (!sni.certificate_chain_file.empty()) {
      sni.certificate_chain_pem = read_whole_file(sni.certificate_chain_file, "certificate chain");
    }
    if (!sni.private_key_file.empty()) {
      sni.private_key_pem = read_whole_file(sni.private_key_file, "private key");
    }
  }
  return c;
}

}  // namespace uringrpc

namespace uringrpc::transport {

std::string drain_openssl_errors(const char* fallback) {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string(fallback) : out;
}

namespace {

// HTTP/2 over TLS 1.2 forbids most suites (RFC 9113 section 9.2.2): only ephemeral key
// exchange with an AEAD cipher is acceptable, so offer nothing else. TLS 1.3 suites are
// all AEAD and stay at OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr std::string_view kAlpnH2 = "h2";

// Picks "h2" wherever it sits in the client's list. A client that speaks ALPN but not h2
// would otherwise finish the handshake and then talk HTTP/1.1 at our HTTP/2 parser, so it
// gets the no_application_protocol alert (what SSL_TLSEXT_ERR_ALERT_FATAL sends here).
// A client that sends no ALPN at all never reaches this callback; the connection layer
// decides about it after the handshake (TlsSession::alpn_h2()).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  unsigned int i = 0;
  while (i < inlen) {
    unsigned int len = in[i];
    if (len == 0 || len > inlen - i - 1) break;  // malformed list; OpenSSL also checks
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == kAlpnH2) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Never prompt on the terminal for a passphrase: a server has nobody to ask.
int no_passphrase(char*, int, int, void*) { return 0; }

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const noexcept { X509_STORE_free(s); }
};
struct CtxFree {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

[[noreturn]] void fail(const std::string& what) {
  std::string detail = drain_openssl_errors("");
  throw std::invalid_argument("TLS credentials: " + what + (detail.empty() ? "" : ": " + detail));
}

BioPtr pem_bio(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail("cannot allocate a memory BIO");
  return bio;
}

// True when the last error is PEM's "no more PEM blocks": the normal end of a chain.
bool pem_at_end() {
  unsigned long e = ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

void load_chain(SSL_CTX* ctx, const std::string& pem) {
  if (pem.empty()) fail("certificate_chain_pem is empty");
  BioPtr bio = pem_bio(pem);
  X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, no_passphrase, nullptr));
  if (!leaf) fail("cannot parse the leaf certificate in certificate_chain_pem");
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    fail("cannot use the leaf certificate in certificate_chain_pem");
  }
  for (int index = 2;; ++index) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
    if (!cert) {
      if (pem_at_end()) {
        ERR_clear_error();
        return;
      }
      fail("cannot parse certificate #" + std::to_string(index) + " in certificate_chain_pem");
    }
    // add0 takes ownership only on success.
    if (SSL_CTX_add0_chain_cert(ctx, cert.get()) != 1) {
      fail("cannot add certificate #" + std::to_string(index) + " to the chain");
    }
    (void)cert.release();
  }
}

void load_key(SSL_CTX* ctx, const std::string& pem) {
  if (pem.empty()) fail("private_key_pem is empty");
  BioPtr bio = pem_bio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) fail("cannot parse private_key_pem as an unencrypted PEM private key");
  // OpenSSL 3 refuses here when the key is of the certificate's type but another key; a key
  // of a different type lands in another slot and is caught by the check below.
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    fail("the private key does not match the leaf certificate");
  }
}

const char* mode_name(ClientCertificate mode) {
  switch (mode) {
    case ClientCertificate::kNone: return "kNone";
    case ClientCertificate::kRequest: return "kRequest";
    case ClientCertificate::kRequire: return "kRequire";
  }
  return "an unknown value";
}

// Client certificates are checked against a store of their own (the verify store) rather than
// the context's default store, which OpenSSL may also consult to complete our own chain: a
// client CA must never end up in what we send, nor our chain's CA become a client root.
void configure_client_certificates(SSL_CTX* ctx, const TlsCredentials& credentials) {
  ClientCertificate mode = credentials.client_certificate;
  if (mode == ClientCertificate::kNone) {
    if (!credentials.client_ca_pem.empty()) {
      fail("client_ca_pem is set but client_certificate is kNone; set kRequest or kRequire to "
           "verify clients, or leave client_ca_pem empty");
    }
    return;  // SSL_VERIFY_NONE, OpenSSL's default: no CertificateRequest is sent
  }
  if (mode != ClientCertificate::kRequest && mode != ClientCertificate::kRequire) {
    fail("client_certificate has an unknown value");
  }
  if (credentials.client_ca_pem.empty()) {
    fail(std::string("client_certificate is ") + mode_name(mode) +
         " but client_ca_pem is empty; it needs the CA certificates clients chain to");
  }
  StorePtr store(X509_STORE_new());
  if (!store) fail("cannot allocate the client CA store");
  BioPtr bio = pem_bio(credentials.client_ca_pem);
  int count = 0;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
    if (!cert) {
      if (pem_at_end()) {
        ERR_clear_error();
        break;
      }
      fail("cannot parse certificate #" + std::to_string(count + 1) + " in client_ca_pem");
    }
    ++count;
    // Both copy what they need: the store takes a reference, the CA list the subject name.
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1) {
      fail("cannot add certificate #" + std::to_string(count) + " of client_ca_pem to the store");
    }
    // The names go into CertificateRequest so a client holding several certificates can
    // pick the one we will accept.
    if (SSL_CTX_add_client_CA(ctx, cert.get()) != 1) {
      fail("cannot add certificate #" + std::to_string(count) + " of client_ca_pem to the CA list");
    }
  }
  if (count == 0) fail("client_ca_pem holds no PEM certificate");
  // set0 takes ownership on success.
  if (SSL_CTX_set0_verify_cert_store(ctx, store.get()) != 1) fail("cannot set the client CA store");
  (void)store.release();
  // No verify callback: OpenSSL's verdict stands, so a certificate that does not verify
  // fails the handshake in both modes (with an alert that names the reason).
  int flags = SSL_VERIFY_PEER;
  if (mode == ClientCertificate::kRequire) flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, flags, nullptr);
}

// One SSL_CTX with everything but the certificate shared by all of a port's contexts: the
// default one and each SNI one get the same protocol settings and client-certificate policy,
// so switching an SSL to another of them (on_server_name) changes only what it presents.
CtxPtr build_ctx(const std::string& chain_pem, const std::string& key_pem, const TlsCredentials& credentials) {
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) fail("cannot create SSL_CTX");

  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    fail("cannot set the minimum TLS version");
  }
  // No renegotiation: it is a DoS lever and HTTP/2 forbids it (RFC 9113 section 9.2.1).
  // No compression: CRIME. Server preference: we pick the strongest suite we both have.
  SSL_CTX_set_options(ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_NO_COMPRESSION);
  // Lets OpenSSL free its ~34 KiB of record buffers while a connection is idle; servers hold
  // many idle connections and the buffers come back on the next record.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx.get(), kTls12Ciphers) != 1) fail("cannot set TLS 1.2 ciphers");
  // The built-in session cache is one locked table that every shard would contend on; the
  // stateless tickets OpenSSL issues by default give clients resumption without it.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  // Required for resumption once client certificates exist (mutual TLS); harmless before.
  static constexpr unsigned char kSessionIdContext[] = "uringrpc";
  SSL_CTX_set_session_id_context(ctx.get(), kSessionIdContext, sizeof kSessionIdContext - 1);
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);

  load_chain(ctx.get(), chain_pem);
  load_key(ctx.get(), key_pem);
  configure_client_certificates(ctx.get(), credentials);
  return ctx;
}

// "API.Example.com" -> "api.example.com"; throws for what no client could ever send.
std::string normalized_server_name(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  std::string_view rest = out;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  bool ok = !rest.empty() && rest.front() != '.' && rest.back() != '.' &&
            rest.find("..") == std::string_view::npos && rest.find('*') == std::string_view::npos;
  for (char c : rest) ok = ok && c > ' ' && c != 0x7f;
  if (!ok) {
    throw std::invalid_argument("TLS credentials: sni_certificates has the server name '" + name +
                                "'; it must be a DNS name (\"api.example.com\") or one with a leading "
                                "wildcard label (\"*.example.com\")");
  }
  return out;
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::create(const TlsCredentials& credentials) {
  // Errors left behind by unrelated code on this thread must not end up in our message.
  ERR_clear_error();
  CtxPtr ctx = build_ctx(credentials.certificate_chain_pem, credentials.private_key_pem, credentials);
  std::vector<std::pair<std::string, CtxPtr>> named;
  for (const SniCertificate& sni : credentials.sni_certificates) {
    std::string name = normalized_server_name(sni.server_name);
    for (const auto& [other, _] : named) {
      if (other == name) {
        throw std::invalid_argument("TLS credentials: sni_certificates names '" + sni.server_name + "' twice");
      }
    }
    try {
      named.emplace_back(name, build_ctx(sni.certificate_chain_pem, sni.private_key_pem, credentials));
    } catch (const std::invalid_argument& e) {
      std::string why = e.what();
      constexpr std::string_view kPrefix = "TLS credentials: ";
      if (why.starts_with(kPrefix)) why.erase(0, kPrefix.size());
      throw std::invalid_argument("TLS credentials: the SNI certificate for '" + sni.server_name + "': " + why);
    }
  }
  ERR_clear_error();
  std::shared_ptr<TlsContext> out(new TlsContext(ctx.release()));
  for (auto& [name, c] : named) out->named_.push_back({std::move(name), c.release()});
  if (!out->named_.empty()) {
    SSL_CTX_set_tlsext_servername_callback(out->ctx_, &TlsContext::on_server_name);
    SSL_CTX_set_tlsext_servername_arg(out->ctx_, out.get());
  }
  return out;
}

TlsContext::~TlsContext() {
  for (auto& n : named_) SSL_CTX_free(n.ctx);
  SSL_CTX_free(ctx_);
}

SSL_CTX* TlsContext::for_server_name(std::string_view name) const noexcept {
  if (name.empty() || name.size() > 253) return nullptr;
  char lower[254];
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    lower[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  std::string_view want(lower, name.size());
  for (const auto& n : named_) {
    if (n.name == want) return n.ctx;
  }
  // "*.example.com" covers exactly one label in front of example.com.
  size_t dot = want.find('.');
  if (dot == std::string_view::npos || dot == 0) return nullptr;
  std::string_view parent = want.substr(dot);  // ".example.com"
  for (const auto& n : named_) {
    if (n.name.size() == parent.size() + 1 && n.name[0] == '*' && std::string_view(n.name).substr(1) == parent) {
      return n.ctx;
    }
  }
  return nullptr;
}

// Runs inside SSL_do_handshake on the shard that owns the connection, once per handshake,
// before the certificate is chosen: it only reads this context's immutable name table.
int TlsContext::on_server_name(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;  // no SNI: the default certificate
  SSL_CTX* chosen = self->for_server_name(name);
  if (chosen != nullptr && SSL_set_SSL_CTX(ssl, chosen) == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace uringrpc::transport
