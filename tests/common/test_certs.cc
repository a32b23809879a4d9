// Generates the test PKI in-process (no `openssl` shell-outs, no checked-in keys that expire):
// two CAs, a server certificate for localhost and a client certificate from each CA, EC P-256
// throughout because RSA keygen would cost every test binary a noticeable pause.
#include "test_certs.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace uringrpc::testing {

namespace {

constexpr long kValiditySeconds = 365L * 24 * 3600;
constexpr long kBackdateSeconds = 24L * 3600;  // tolerate a test host whose clock lags a bit

struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct BnFree {
  void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

[[noreturn]] void fail(const std::string& what) {
  std::string detail;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    detail += detail.empty() ? "" : "; ";
    detail += buf;
  }
  throw std::runtime_error("test PKI: " + what + (detail.empty() ? "" : ": " + detail));
}

PkeyPtr make_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EC key generation");
  return key;
}

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (ext == nullptr) fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) fail(std::string("adding extension ") + OBJ_nid2sn(nid));
}

enum class Kind { kCa, kServer, kClient };

// issuer == nullptr makes a self-signed certificate (the CA).
// Every way an e2e test may dial the loopback server, and the name gRPC's interop
// clients claim (--server_host_override=foo.test.google.fr) as in gRPC's own test certificate.
constexpr const char* kServerSans = "DNS:localhost,DNS:*.test.google.fr,IP:127.0.0.1,IP:::1";

X509Ptr make_cert(EVP_PKEY* key, const char* common_name, X509* issuer, EVP_PKEY* issuer_key,
                  Kind kind, const char* server_sans = kServerSans) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  X509* x = cert.get();
  X509_set_version(x, X509_VERSION_3);

  // Random serials: a client that caches anything per (issuer, serial) never confuses two runs.
  std::unique_ptr<BIGNUM, BnFree> serial(BN_new());
  if (!serial || BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x)) == nullptr) {
    fail("serial number");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(x), -kBackdateSeconds) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x), kValiditySeconds) == nullptr) {
    fail("validity");
  }
  if (X509_set_pubkey(x, key) != 1) fail("X509_set_pubkey");

  X509_NAME* name = X509_get_subject_name(x);
  auto text = [](const char* s) { return reinterpret_cast<const unsigned char*>(s); };
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, text("uringrpc tests"), -1, -1, 0) !=
          1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, text(common_name), -1, -1, 0) != 1) {
    fail("subject name");
  }
  if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1) {
    fail("issuer name");
  }

  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer ? issuer : x, x, nullptr, nullptr, 0);
  // The subject key id goes first: a self-signed authority key id refers to it.
  add_ext(x, &v3, NID_subject_key_identifier, "hash");
  add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
  if (kind == Kind::kCa) {
    add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else if (kind == Kind::kServer) {
    add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, &v3, NID_key_usage, "critical,digitalSignature");
    add_ext(x, &v3, NID_ext_key_usage, "serverAuth");
    add_ext(x, &v3, NID_subject_alt_name, server_sans);
  } else {
    add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, &v3, NID_key_usage, "critical,digitalSignature");
    // OpenSSL checks the "SSL client" purpose on a client's certificate.
    add_ext(x, &v3, NID_ext_key_usage, "clientAuth");
    // One SAN of each kind PeerIdentity reports, so tests can see all of them come through.
    std::string sans = std::string("DNS:") + kClientDnsSan + ",URI:" + kClientUriSan +
                       ",IP:" + kClientIpv4San + ",IP:" + kClientIpv6San;
    add_ext(x, &v3, NID_subject_alt_name, sans.c_str());
  }
  if (X509_sign(x, issuer_key, EVP_sha256()) <= 0) fail("X509_sign");
  return cert;
}

template <typename Write>
std::string to_pem(Write write) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) fail("PEM encoding");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string cert_pem(X509* cert) {
  return to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert); });
}

std::string key_pem(EVP_PKEY* key) {
  return to_pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

// The CN of kClientSubject; the O comes from make_cert, as for every test certificate.
constexpr const char* kClientCommonName = "uringrpc test client";

TestPki generate() {
  ERR_clear_error();
  PkeyPtr ca_key = make_key();
  X509Ptr ca = make_cert(ca_key.get(), "uringrpc test CA", nullptr, ca_key.get(), Kind::kCa);
  PkeyPtr server_key = make_key();
  X509Ptr server = make_cert(server_key.get(), "localhost", ca.get(), ca_key.get(), Kind::kServer);
  PkeyPtr client_key = make_key();
  X509Ptr client =
      make_cert(client_key.get(), kClientCommonName, ca.get(), ca_key.get(), Kind::kClient);
  PkeyPtr other_ca_key = make_key();
  X509Ptr other_ca = make_cert(other_ca_key.get(), "uringrpc other test CA", nullptr,
                               other_ca_key.get(), Kind::kCa);
  PkeyPtr other_client_key = make_key();
  X509Ptr other_client = make_cert(other_client_key.get(), kClientCommonName, other_ca.get(),
                                   other_ca_key.get(), Kind::kClient);

  TestPki pki;
  pki.ca_cert_pem = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, ca.get()); });
  pki.server_cert_pem = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, server.get()); });
  pki.server_key_pem = to_pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, server_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  pki.server_chain_pem = pki.server_cert_pem + pki.ca_cert_pem;
  pki.client_cert_pem = cert_pem(client.get());
  pki.client_key_pem = key_pem(client_key.get());
  pki.other_ca_cert_pem = cert_pem(other_ca.get());
  pki.other_client_cert_pem = cert_pem(other_client.get());
  pki.other_client_key_pem = key_pem(other_client_key.get());
  return pki;
}

void write_file(const std::string& path, const std::string& content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("test PKI: open " + path + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      throw std::runtime_error("test PKI: write " + path + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

const TestPki& test_pki() {
  static const TestPki pki = generate();  // magic static: generated once, thread-safe
  return pki;
}

ServerCert make_server_cert(const std::string& name, const std::string& extra_sans) {
  ERR_clear_error();
  PkeyPtr ca_key = make_key();
  std::string ca_name = name + " CA";
  X509Ptr ca = make_cert(ca_key.get(), ca_name.c_str(), nullptr, ca_key.get(), Kind::kCa);
  PkeyPtr key = make_key();
  std::string sans = std::string(kServerSans) + (extra_sans.empty() ? "" : "," + extra_sans);
  X509Ptr cert = make_cert(key.get(), name.c_str(), ca.get(), ca_key.get(), Kind::kServer, sans.c_str());
  ServerCert out;
  out.ca_cert_pem = cert_pem(ca.get());
  out.cert_pem = cert_pem(cert.get());
  out.key_pem = key_pem(key.get());
  out.chain_pem = out.cert_pem + out.ca_cert_pem;
  return out;
}

std::string make_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/uringrpc-pki-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("test PKI: mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  return buf.data();
}

TestPkiFiles write_test_pki_files() {
  const TestPki& pki = test_pki();
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/uringrpc-pki-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("test PKI: mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  TestPkiFiles files;
  files.dir = buf.data();
  files.ca_path = files.dir + "/ca.pem";
  files.cert_path = files.dir + "/server-chain.pem";
  files.key_path = files.dir + "/server-key.pem";
  write_file(files.ca_path, pki.ca_cert_pem, 0644);
  write_file(files.cert_path, pki.server_chain_pem, 0644);
  write_file(files.key_path, pki.server_key_pem, 0600);
  return files;
}

}  // namespace uringrpc::testing
