#include "http2/request_rules.h"

#include <array>
#include <cstring>

namespace uringrpc::http2 {
namespace {

// One table of character classes, so each check is a load and a mask per byte.
enum : uint8_t {
  kTokenChar = 1 << 0,      // RFC 9110 tchar (methods)
  kNameChar = 1 << 1,       // tchar without upper case: HTTP/2 field names (RFC 9113 8.2.1)
  kValueChar = 1 << 2,      // HTAB, visible ASCII, SP, obs-text: no NUL, CR, LF or other CTL
  kPathChar = 1 << 3,       // visible ASCII and obs-text: no SP, no CTL
  kAuthorityChar = 1 << 4,  // RFC 3986 authority: unreserved, sub-delims, ":@[]%"
  kSchemeChar = 1 << 5,     // RFC 3986 scheme after its first letter
};

constexpr bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(int c) { return c >= '0' && c <= '9'; }
constexpr bool is_in(int c, std::string_view set) {
  for (char s : set) {
    if (c == static_cast<unsigned char>(s)) return true;
  }
  return false;
}

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t f = 0;
    bool tchar = is_alpha(c) || is_digit(c) || is_in(c, "!#$%&'*+-.^_`|~");
    if (tchar) f |= kTokenChar;
    if (tchar && !(c >= 'A' && c <= 'Z')) f |= kNameChar;
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) f |= kValueChar;
    if (c > 0x20 && c != 0x7f) f |= kPathChar;
    if (is_alpha(c) || is_digit(c) || is_in(c, "-._~!$&'()*+,;=:@[]%")) f |= kAuthorityChar;
    if (is_alpha(c) || is_digit(c) || is_in(c, "+-.")) f |= kSchemeChar;
    t[c] = f;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = make_classes();

bool all_of_class(std::string_view s, uint8_t cls) {
  uint8_t acc = cls;
  for (unsigned char c : s) acc &= kClasses[c];  // no early exit: fields are short
  return acc == cls;
}

// Values are most of a request head's bytes: check them eight at a time for the two
// things a value may not hold, a byte below `floor` (controls; SP too for paths) and DEL,
// and let the byte table decide only for a word that has one (HTAB is allowed in values).
constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
bool word_maybe_bad(uint64_t w, uint64_t floor) {
  uint64_t below = (w - kOnes * floor) & ~w & kHighs;  // exact for floor <= 128
  uint64_t x = w ^ (kOnes * 0x7f);
  uint64_t del = (x - kOnes) & ~x & kHighs;
  return (below | del) != 0;
}
bool all_of_class_wide(std::string_view s, uint8_t cls, uint64_t floor) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (word_maybe_bad(w, floor)) return all_of_class(s, cls);
  }
  return all_of_class(s.substr(i), cls);
}
bool valid_value(std::string_view v) { return all_of_class_wide(v, kValueChar, 0x20); }
bool valid_path(std::string_view v) { return all_of_class_wide(v, kPathChar, 0x21); }

bool is_ws(char c) { return c == ' ' || c == '\t'; }

bool equals_ignoring_case(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

bool parse_length(std::string_view v, int64_t* out) {
  if (v.empty() || v.size() > 18) return false;  // 18 digits cannot overflow int64
  int64_t n = 0;
  for (char c : v) {
    if (!is_digit(c)) return false;
    n = n * 10 + (c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

FieldName classify_field(std::string_view n) noexcept {
  using F = FieldName;
  if (n.empty()) return F::kOther;
  if (n[0] == ':') {
    switch (n.size()) {
      case 5: return n == ":path" ? F::kPath : F::kUnknownPseudo;
      case 7: return n == ":method" ? F::kMethod : n == ":scheme" ? F::kScheme : F::kUnknownPseudo;
      case 10: return n == ":authority" ? F::kAuthority : F::kUnknownPseudo;
      default: return F::kUnknownPseudo;
    }
  }
  switch (n.size()) {
    case 2: return n == "te" ? F::kTe : F::kOther;
    case 4: return n == "host" ? F::kHost : F::kOther;
    case 7: return n == "upgrade" ? F::kConnectionSpecific : F::kOther;
    case 10:
      return n == "connection" || n == "keep-alive" ? F::kConnectionSpecific : F::kOther;
    case 12:
      return n == "content-type" ? F::kContentType : n == "grpc-timeout" ? F::kGrpcTimeout : F::kOther;
    case 13: return n == "grpc-encoding" ? F::kGrpcEncoding : F::kOther;
    case 14: return n == "content-length" ? F::kContentLength : F::kOther;
    case 16: return n == "proxy-connection" ? F::kConnectionSpecific : F::kOther;
    case 17: return n == "transfer-encoding" ? F::kConnectionSpecific : F::kOther;
    case 20: return n == "grpc-accept-encoding" ? F::kGrpcAcceptEncoding : F::kOther;
    default: return F::kOther;
  }
}

bool RequestRules::on_field(FieldName kind, std::string_view name, std::string_view value,
                            bool trailer) noexcept {
  if (malformed_) return false;
  if (name.empty()) return fail();
  if (name[0] == ':') {
    // Pseudo-fields: request head only, before every regular field, once each, and never
    // empty or blank (RFC 9113 8.3).
    if (trailer || (seen_ & kRegularSeen)) return fail();
    if (value.empty() || is_ws(value.front()) || is_ws(value.back())) return fail();
    auto once = [this](uint16_t bit) {
      if (seen_ & bit) return false;
      seen_ |= bit;
      return true;
    };
    switch (kind) {
      case FieldName::kMethod:
        if (!once(kSeenMethod) || !all_of_class(value, kTokenChar)) return fail();
        if (value == "CONNECT") seen_ |= kConnect;
        else if (value == "OPTIONS") seen_ |= kOptions;
        return true;
      case FieldName::kScheme:
        if (!once(kSeenScheme) || !is_alpha(static_cast<unsigned char>(value[0])) ||
            !all_of_class(value, kSchemeChar)) {
          return fail();
        }
        if (value == "http" || value == "https" || equals_ignoring_case(value, "http") ||
            equals_ignoring_case(value, "https")) {
          seen_ |= kHttpScheme;
        }
        return true;
      case FieldName::kPath:
        if (!once(kSeenPath) || !valid_path(value)) return fail();
        if (value == "*") seen_ |= kPathAsterisk;
        else if (value[0] != '/') seen_ |= kPathOther;  // judged at head end, with the scheme
        return true;
      case FieldName::kAuthority:
        if (!once(kSeenAuthority) || !all_of_class(value, kAuthorityChar)) return fail();
        return true;
      default:
        return fail();  // :status, :protocol (extended CONNECT is not offered) or unknown
    }
  }
  seen_ |= kRegularSeen;
  // A name classify_field recognised is one of ours, so already a valid one.
  if (kind == FieldName::kOther && !all_of_class(name, kNameChar)) return fail();  // upper case, SP, CTL
  if (!value.empty() && (is_ws(value.front()) || is_ws(value.back()))) return fail();
  if (!valid_value(value)) return fail();
  switch (kind) {
    case FieldName::kConnectionSpecific:
      return fail();  // RFC 9113 8.2.2
    case FieldName::kTe:
      return value == "trailers" || equals_ignoring_case(value, "trailers") || fail();
    case FieldName::kHost:
      if ((seen_ & kSeenHost) || !all_of_class(value, kAuthorityChar)) return fail();
      seen_ |= kSeenHost;
      return true;
    case FieldName::kContentLength:
      if (content_length_ >= 0 || !parse_length(value, &content_length_)) return fail();
      return true;
    default:
      return true;
  }
}

bool RequestRules::on_head_end() noexcept {
  if (malformed_) return false;
  if (seen_ & kConnect) {
    // CONNECT names only an authority (RFC 9113 8.5).
    if (!(seen_ & kSeenAuthority) || (seen_ & (kSeenScheme | kSeenPath))) return fail();
    return true;
  }
  constexpr uint16_t kRequired = kSeenMethod | kSeenScheme | kSeenPath;
  if ((seen_ & kRequired) != kRequired) return fail();
  if (seen_ & kHttpScheme) {
    // http(s) targets are absolute paths, or "*" for a server-wide OPTIONS (RFC 9113 8.3.1).
    bool asterisk = seen_ & kPathAsterisk;
    bool other = seen_ & kPathOther;
    if (other || (asterisk && !(seen_ & kOptions))) return fail();
  }
  return true;
}

bool RequestRules::on_data(size_t n) noexcept {
  if (malformed_) return false;
  data_bytes_ += n;
  if (content_length_ >= 0 && data_bytes_ > static_cast<uint64_t>(content_length_)) return fail();
  return true;
}

bool RequestRules::on_end_stream() noexcept {
  if (malformed_) return false;
  if (content_length_ >= 0 && data_bytes_ != static_cast<uint64_t>(content_length_)) return fail();
  return true;
}

}  // namespace uringrpc::http2
