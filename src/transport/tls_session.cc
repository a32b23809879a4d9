// Per-connection TLS over memory BIOs: the shard's connection layer pushes received
// ciphertext in and pulls ciphertext to send out. Runs on the shard thread for every byte
// of a secure connection, so it never blocks, never throws and never touches an fd.
#include "transport/tls_session.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

namespace uringrpc::transport {

namespace {

// OpenSSL's error queue is per thread and a shard thread serves many connections: clear it
// before each call so a stale entry from another connection is not blamed on this one, and
// after, so none of ours is left for the next. Cheap: a thread-local lookup.
class ErrorQueueScope {
 public:
  ErrorQueueScope() noexcept { ERR_clear_error(); }
  ~ErrorQueueScope() { ERR_clear_error(); }
  ErrorQueueScope(const ErrorQueueScope&) = delete;
  ErrorQueueScope& operator=(const ErrorQueueScope&) = delete;
};

// One full TLS record of plaintext: SSL_read never returns more than that at once.
constexpr size_t kReadChunk = 16 * 1024;
constexpr std::string_view kAlpnH2 = "h2";

const char* ssl_error_name(int e) {
  switch (e) {
    case SSL_ERROR_SSL: return "protocol error";
    case SSL_ERROR_SYSCALL: return "I/O error";
    case SSL_ERROR_ZERO_RETURN: return "peer closed";
    case SSL_ERROR_WANT_WRITE: return "unexpected want-write";
    case SSL_ERROR_WANT_X509_LOOKUP: return "unexpected want-x509-lookup";
    default: return "unexpected SSL error";
  }
}

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* n) const noexcept { GENERAL_NAMES_free(n); }
};

// What a memory BIO holds, as a string; empty when `b` is null.
std::string bio_contents(BIO* b) {
  if (b == nullptr) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string asn1_text(const ASN1_STRING* s) {
  if (s == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// RFC 2253 asks for UTF-8; OpenSSL's RFC 2253 preset would escape every non-ASCII byte.
std::string rfc2253_name(const X509_NAME* name) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    return {};
  }
  return bio_contents(bio.get());
}

// An iPAddress SAN is the raw 4 or 16 address bytes; anything else is malformed and skipped.
void add_ip_san(const ASN1_OCTET_STRING* ip, std::vector<std::string>& out) {
  int len = ASN1_STRING_length(ip);
  int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
  if (family == 0) return;
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr) {
    out.emplace_back(text);
  }
}

PeerIdentity identity_of(X509* cert, bool verified) {
  PeerIdentity id;
  id.verified = verified;
  id.subject = rfc2253_name(X509_get_subject_name(cert));
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    switch (gn->type) {
      case GEN_DNS: id.dns_sans.push_back(asn1_text(gn->d.dNSName)); break;
      case GEN_URI: id.uri_sans.push_back(asn1_text(gn->d.uniformResourceIdentifier)); break;
      case GEN_IPADD: add_ip_san(gn->d.iPAddress, id.ip_sans); break;
      default: break;
    }
  }
  std::unique_ptr<BIO, BioFree> pem(BIO_new(BIO_s_mem()));
  if (pem && PEM_write_bio_X509(pem.get(), cert) == 1) id.certificate_pem = bio_contents(pem.get());
  return id;
}

}  // namespace

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx) : ctx_(std::move(ctx)) {
  ErrorQueueScope scope;
  if (!ctx_) {
    failed_ = true;
    error_ = "TLS session created without a context";
    return;
  }
  ssl_ = SSL_new(ctx_->native());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    fail("cannot allocate TLS session", 0);
    return;
  }
  // An empty input BIO means "wait for the next receive", never end of stream: the socket's
  // EOF is the connection layer's business.
  BIO_set_mem_eof_return(in, -1);
  BIO_set_mem_eof_return(out, -1);
  SSL_set_bio(ssl_, in, out);
  in_ = in;
  out_ = out;
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);  // frees in_ and out_ too
}

void TlsSession::fail(const char* what, int ssl_error) {
  failed_ = true;
  error_ = what;
  error_ += ": ";
  error_ += drain_openssl_errors(ssl_error == 0 ? "no detail from OpenSSL"
                                                : ssl_error_name(ssl_error));
}

TlsSession::Result TlsSession::feed_ciphertext(const uint8_t* data, size_t len) {
  if (failed_) return Result::kError;
  if (peer_closed_) return Result::kClosed;
  ErrorQueueScope scope;
  while (len > 0) {
    int chunk = static_cast<int>(std::min<size_t>(len, INT_MAX));
    int n = BIO_write(in_, data, chunk);
    if (n <= 0) {
      fail("cannot buffer received ciphertext", 0);
      return Result::kError;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return advance();
}

TlsSession::Result TlsSession::advance() {
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) return Result::kOk;  // the rest of the flight is in transit
      if (e == SSL_ERROR_ZERO_RETURN) {
        peer_closed_ = true;
        return Result::kClosed;
      }
      fail("TLS handshake failed", e);
      return Result::kError;
    }
    if (!finish_handshake()) return Result::kError;
  }
  return decrypt_available();
}

bool TlsSession::finish_handshake() {
  handshake_done_ = true;
  const unsigned char* proto = nullptr;
  unsigned int proto_len = 0;
  SSL_get0_alpn_selected(ssl_, &proto, &proto_len);
  alpn_h2_ = std::string_view(reinterpret_cast<const char*>(proto), proto_len) == kAlpnH2;
  if (!capture_peer_identity()) return false;
  if (!early_writes_.empty()) {
    std::string pending = std::move(early_writes_);
    early_writes_.clear();
    if (!encrypt(reinterpret_cast<const uint8_t*>(pending.data()), pending.size())) return false;
  }
  if (shutdown_requested_) SSL_shutdown(ssl_);
  return true;
}

// Once, here, rather than on each call's request: the certificate cannot change afterwards
// (renegotiation is off), and the layers above may ask after this session is gone.
bool TlsSession::capture_peer_identity() {
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return true;  // not asked for, or (kRequest) declined
  // With SSL_VERIFY_PEER the handshake only completes when this is X509_V_OK; asked anyway
  // so that `verified` states a fact rather than an assumption about the context.
  bool verified = SSL_get_verify_result(ssl_) == X509_V_OK;
  try {
    peer_identity_ = std::make_shared<const PeerIdentity>(identity_of(cert, verified));
  } catch (const std::bad_alloc&) {
    fail("cannot allocate the peer identity", 0);
    return false;
  }
  return true;
}

// Eager rather than on read_plaintext: only SSL_read sees a close_notify or a corrupt record,
// and feed_ciphertext is where the caller learns about those.
TlsSession::Result TlsSession::decrypt_available() {
  for (;;) {
    if (!reserve_plain(kReadChunk)) {
      fail("cannot allocate plaintext buffer", 0);
      return Result::kError;
    }
    size_t n = 0;
    int r = SSL_read_ex(ssl_, plain_.get() + plain_end_, kReadChunk, &n);
    if (r == 1) {
      plain_end_ += n;
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) {
      if (plain_end_ == plain_begin_) release_plain();
      return Result::kOk;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      return Result::kClosed;
    }
    fail("TLS read failed", e);
    return Result::kError;
  }
}

bool TlsSession::reserve_plain(size_t n) noexcept {
  if (plain_cap_ - plain_end_ >= n) return true;
  size_t live = plain_end_ - plain_begin_;
  if (plain_cap_ - live >= n) {
    std::memmove(plain_.get(), plain_.get() + plain_begin_, live);
  } else {
    size_t cap = std::max(plain_cap_ * 2, live + n);
    std::unique_ptr<uint8_t[]> grown(new (std::nothrow) uint8_t[cap]);
    if (!grown) return false;
    if (live > 0) std::memcpy(grown.get(), plain_.get() + plain_begin_, live);
    plain_ = std::move(grown);
    plain_cap_ = cap;
  }
  plain_begin_ = 0;
  plain_end_ = live;
  return true;
}

// Freed as soon as it is drained: an idle connection must not pin memory (a server holds many),
// and a 16 KiB malloc per receive is cheap next to decrypting it.
void TlsSession::release_plain() noexcept {
  plain_begin_ = plain_end_ = 0;
  plain_.reset();
  plain_cap_ = 0;
}

size_t TlsSession::read_plaintext(uint8_t* out, size_t cap) {
  size_t n = std::min(cap, plain_end_ - plain_begin_);
  if (n == 0) return 0;
  std::memcpy(out, plain_.get() + plain_begin_, n);
  plain_begin_ += n;
  if (plain_begin_ == plain_end_) release_plain();
  return n;
}

bool TlsSession::write_plaintext(const uint8_t* data, size_t len) {
  if (failed_) return false;
  if (shutdown_requested_) {
    // A caller bug rather than a connection failure: report it without poisoning the session.
    error_ = "TLS write after shutdown";
    return false;
  }
  if (len == 0) return true;
  if (!handshake_done_) {
    // OpenSSL would try to advance the handshake from SSL_write; hold the bytes instead.
    early_writes_.append(reinterpret_cast<const char*>(data), len);
    return true;
  }
  ErrorQueueScope scope;
  return encrypt(data, len);
}

bool TlsSession::encrypt(const uint8_t* data, size_t len) {
  // Without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write_ex writes every record or fails, and a
  // memory BIO never asks to retry a write, so one call takes all of it.
  size_t written = 0;
  int r = SSL_write_ex(ssl_, data, len, &written);
  if (r == 1 && written == len) return true;
  fail("TLS write failed", SSL_get_error(ssl_, r));
  return false;
}

void TlsSession::shutdown() {
  if (failed_ || shutdown_requested_ || ssl_ == nullptr) return;
  shutdown_requested_ = true;
  if (!handshake_done_) return;  // finish_handshake() sends it
  ErrorQueueScope scope;
  // Returns 0 ("sent, peer's not yet seen"): we do not wait for the peer's close_notify.
  SSL_shutdown(ssl_);
}

size_t TlsSession::pending_ciphertext() const {
  return out_ == nullptr ? 0 : BIO_ctrl_pending(out_);
}

size_t TlsSession::read_ciphertext(uint8_t* out, size_t cap) {
  if (out_ == nullptr || cap == 0) return 0;
  int n = BIO_read(out_, out, static_cast<int>(std::min<size_t>(cap, INT_MAX)));
  return n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace uringrpc::transport
