// RequestRules: what RFC 9113 section 8 asks of a request's fields and body, checked as
// they arrive. nghttp2 can check this itself, but its checks re-validate every field of
// every request (indexed ones included) and cost a tenth of a unary call's instructions
// (callgrind); the session turns them off (no_http_messaging) and asks this instead, once
// per field, fused with the lookup that files the field into the request head.
//
// A malformed request is answered with RST_STREAM PROTOCOL_ERROR (RFC 9113 8.1.1) and
// never reaches the rpc layer; tests/e2e/h2_conformance_test.py section 8 pins each rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace uringrpc::http2 {

// The fields the session recognises by name; everything else is kOther.
enum class FieldName : uint8_t {
  kOther,
  kMethod,
  kScheme,
  kPath,
  kAuthority,
  kUnknownPseudo,  // any other name starting with ':' (:status, :protocol, ...)
  kHost,
  kContentLength,
  kContentType,
  kTe,
  kGrpcTimeout,
  kGrpcEncoding,
  kGrpcAcceptEncoding,
  kConnectionSpecific,  // connection, keep-alive, proxy-connection, transfer-encoding, upgrade
};

FieldName classify_field(std::string_view name) noexcept;

// What the rules find in one field's bytes alone, whatever request it is in: whether they
// break a rule (a name that is no lower-case token, a value with controls or outer
// whitespace, a pseudo-field value against its grammar, a connection-specific field, ...)
// and what the request-wide rules need to know of the value (CONNECT, OPTIONS, an http(s)
// scheme, the kind of path). The same bytes always get the same facts, so the session may
// remember them for buffers nghttp2 hands over again (a field from the HPACK table).
struct FieldFacts {
  enum : uint8_t {
    kBad = 1 << 0,
    kConnect = 1 << 1,      // :method CONNECT
    kOptions = 1 << 2,      // :method OPTIONS
    kHttpScheme = 1 << 3,   // :scheme http or https, in any case
    kPathAsterisk = 1 << 4, // :path "*"
    kPathOther = 1 << 5,    // :path neither "/..." nor "*"
  };
  uint8_t bits = 0;
};
FieldFacts judge_field(FieldName kind, std::string_view name, std::string_view value) noexcept;

class RequestRules {
 public:
  // One field of the request head (trailer=false) or of its trailers. Returns false when
  // the request is malformed (and stays so: later calls return false at once).
  bool on_field(FieldName kind, std::string_view name, std::string_view value, bool trailer) noexcept {
    return on_judged_field(kind, judge_field(kind, name, value), value, trailer);
  }
  // The same, with the facts of its bytes already judged (judge_field of these name and
  // value): the rules that depend on the rest of the request (pseudo-fields first and
  // once, no pseudo-field in trailers, one host, one content-length and the body's size).
  bool on_judged_field(FieldName kind, FieldFacts facts, std::string_view value, bool trailer) noexcept;
  // The request head is complete: the required pseudo-fields are there.
  bool on_head_end() noexcept;
  // DATA payload (padding excluded) and the client's END_STREAM: content-length holds.
  bool on_data(size_t n) noexcept;
  bool on_end_stream() noexcept;

  bool malformed() const noexcept { return malformed_; }

 private:
  bool on_content_length(std::string_view value) noexcept;  // one, and digits only
  bool fail() noexcept {
    malformed_ = true;
    return false;
  }

  enum : uint16_t {
    kSeenMethod = 1 << 0,
    kSeenScheme = 1 << 1,
    kSeenPath = 1 << 2,
    kSeenAuthority = 1 << 3,
    kSeenHost = 1 << 4,
    kRegularSeen = 1 << 5,  // pseudo-fields must come first
    kConnect = 1 << 6,
    kOptions = 1 << 7,
    kPathAsterisk = 1 << 8,
    kPathOther = 1 << 9,    // neither "/..." nor "*"
    kHttpScheme = 1 << 10,  // http or https: :path must be absolute ("/...") or OPTIONS "*"
  };
  uint16_t seen_ = 0;
  bool malformed_ = false;
  int64_t content_length_ = -1;
  uint64_t data_bytes_ = 0;
};

// Inline: on_header calls it for every field, and most of it is a few bit tests.
inline bool RequestRules::on_judged_field(FieldName kind, FieldFacts facts, std::string_view value, bool trailer) noexcept {
  if (malformed_) return false;
  if (facts.bits & FieldFacts::kBad) return fail();
  switch (kind) {
    case FieldName::kMethod:
    case FieldName::kScheme:
    case FieldName::kPath:
    case FieldName::kAuthority: {
      // Pseudo-fields: request head only, before every regular field, once each.
      uint16_t bit = kind == FieldName::kMethod   ? kSeenMethod
                     : kind == FieldName::kScheme ? kSeenScheme
                     : kind == FieldName::kPath   ? kSeenPath
                                                  : kSeenAuthority;
      if (trailer || (seen_ & (kRegularSeen | bit))) return fail();
      seen_ |= bit;
      if (facts.bits & FieldFacts::kConnect) seen_ |= kConnect;
      if (facts.bits & FieldFacts::kOptions) seen_ |= kOptions;
      if (facts.bits & FieldFacts::kHttpScheme) seen_ |= kHttpScheme;
      if (facts.bits & FieldFacts::kPathAsterisk) seen_ |= kPathAsterisk;
      if (facts.bits & FieldFacts::kPathOther) seen_ |= kPathOther;
      return true;
    }
    case FieldName::kUnknownPseudo:
      return fail();  // judged bad already; here for completeness
    case FieldName::kHost:
      seen_ |= kRegularSeen;
      if (seen_ & kSeenHost) return fail();
      seen_ |= kSeenHost;
      return true;
    case FieldName::kContentLength:
      seen_ |= kRegularSeen;
      return on_content_length(value);
    default:
      seen_ |= kRegularSeen;
      return true;
  }
}

}  // namespace uringrpc::http2
