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

// Byte-class scans a word (eight bytes) at a time. Each class has a *fast set*, a few byte
// ranges that cover what requests usually hold (lower-case names, digits and dots of an
// authority, visible ASCII of a value); a word all in it is accepted, and a word with any
// other byte sends the whole string to the byte table above, which decides exactly. So the
// fast sets only ever accept bytes of their class and the verdict is the table's.
constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;

// High bit of each lane whose byte b has lo <= b <= hi (hi < 0x80). Computed on the low
// seven bits, where no lane can carry or borrow into the next, then masked with ~w so a
// byte >= 0x80 is never in range.
constexpr uint64_t lanes_in(uint64_t w, uint8_t lo, uint8_t hi) {
  uint64_t y = w & ~kHighs;
  uint64_t ge = y + kOnes * (0x80u - lo);
  uint64_t le = kOnes * (0x80u + hi) - y;
  return ge & le & ~w & kHighs;
}
constexpr uint64_t lanes_eq(uint64_t w, uint8_t b) { return lanes_in(w, b, b); }

// Lanes that may not be in a value (floor 0x20) or a path (floor 0x21): a byte below the
// floor (controls, SP for paths) or DEL. Inverted, the fast set: bytes >= floor but DEL,
// obs-text included (HTAB, valid in values, goes to the table).
constexpr uint64_t lanes_bad_text(uint64_t w, uint64_t floor) {
  uint64_t below = (w - kOnes * floor) & ~w & kHighs;  // a lane below floor (exact as a whole)
  uint64_t x = w ^ (kOnes * 0x7f);
  uint64_t del = (x - kOnes) & ~x & kHighs;
  return below | del;
}

enum class Fast : uint8_t { kValue, kPath, kName, kAuthority, kUpper, kLower };

template <Fast F>
constexpr bool word_fast(uint64_t w) {
  if constexpr (F == Fast::kValue) return lanes_bad_text(w, 0x20) == 0;
  if constexpr (F == Fast::kPath) return lanes_bad_text(w, 0x21) == 0;
  if constexpr (F == Fast::kName) {  // a-z, 0-9, '-'
    return (lanes_in(w, 'a', 'z') | lanes_in(w, '0', '9') | lanes_eq(w, '-')) == kHighs;
  }
  if constexpr (F == Fast::kAuthority) {  // a-z, 0-9 and ':', '.', '-'
    return (lanes_in(w, 'a', 'z') | lanes_in(w, '0', ':') | lanes_in(w, '-', '.')) == kHighs;
  }
  if constexpr (F == Fast::kUpper) return lanes_in(w, 'A', 'Z') == kHighs;  // methods
  if constexpr (F == Fast::kLower) return lanes_in(w, 'a', 'z') == kHighs;  // schemes
  return false;
}

uint64_t load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
uint32_t load32(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// Every byte of s in whole words: full words, then one last word overlapping the one
// before it; a string shorter than a word is gathered into one (a byte may appear in
// several lanes, which only matters for a verdict every one of its lanes shares).
template <Fast F>
bool all_of(std::string_view s, uint8_t cls) {
  const char* p = s.data();
  size_t n = s.size();
  bool fast;
  if (n >= 8) {
    fast = true;
    size_t i = 0;
    for (; i + 8 <= n && fast; i += 8) fast = word_fast<F>(load64(p + i));
    if (fast && i < n) fast = word_fast<F>(load64(p + n - 8));
  } else if (n >= 4) {
    fast = word_fast<F>(load32(p) | uint64_t{load32(p + n - 4)} << 32);
  } else if (n > 0) {
    auto b = [p](size_t i) { return uint64_t{static_cast<unsigned char>(p[i])}; };
    uint64_t x = b(0) | b(n / 2) << 8 | b(n - 1) << 16 | b(0) << 24;
    fast = word_fast<F>(x | x << 32);
  } else {
    return true;
  }
  return fast || all_of_class(s, cls);
}
bool valid_value(std::string_view v) { return all_of<Fast::kValue>(v, kValueChar); }
bool valid_path(std::string_view v) { return all_of<Fast::kPath>(v, kPathChar); }
bool valid_name(std::string_view v) { return all_of<Fast::kName>(v, kNameChar); }
bool valid_authority(std::string_view v) { return all_of<Fast::kAuthority>(v, kAuthorityChar); }

// Equality with a literal of known length: the compiler compares it in a load or two, not
// through memcmp.
template <size_t N>
bool is(std::string_view s, const char (&lit)[N]) {
  return s.size() == N - 1 && std::memcmp(s.data(), lit, N - 1) == 0;
}

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
      case 5: return is(n, ":path") ? F::kPath : F::kUnknownPseudo;
      case 7: return is(n, ":method") ? F::kMethod : is(n, ":scheme") ? F::kScheme : F::kUnknownPseudo;
      case 10: return is(n, ":authority") ? F::kAuthority : F::kUnknownPseudo;
      default: return F::kUnknownPseudo;
    }
  }
  switch (n.size()) {
    case 2: return is(n, "te") ? F::kTe : F::kOther;
    case 4: return is(n, "host") ? F::kHost : F::kOther;
    case 7: return is(n, "upgrade") ? F::kConnectionSpecific : F::kOther;
    case 10:
      return is(n, "connection") || is(n, "keep-alive") ? F::kConnectionSpecific : F::kOther;
    case 12:
      return is(n, "content-type") ? F::kContentType : is(n, "grpc-timeout") ? F::kGrpcTimeout : F::kOther;
    case 13: return is(n, "grpc-encoding") ? F::kGrpcEncoding : F::kOther;
    case 14: return is(n, "content-length") ? F::kContentLength : F::kOther;
    case 16: return is(n, "proxy-connection") ? F::kConnectionSpecific : F::kOther;
    case 17: return is(n, "transfer-encoding") ? F::kConnectionSpecific : F::kOther;
    case 20: return is(n, "grpc-accept-encoding") ? F::kGrpcAcceptEncoding : F::kOther;
    default: return F::kOther;
  }
}

FieldFacts judge_field(FieldName kind, std::string_view name, std::string_view value) noexcept {
  using F = FieldFacts;
  constexpr FieldFacts kBad{F::kBad};
  if (name.empty()) return kBad;
  if (name[0] == ':') {
    // Pseudo-fields are never empty or blank (RFC 9113 8.3), and each has its grammar.
    if (value.empty() || is_ws(value.front()) || is_ws(value.back())) return kBad;
    switch (kind) {
      case FieldName::kMethod:
        if (!all_of<Fast::kUpper>(value, kTokenChar)) return kBad;
        if (is(value, "CONNECT")) return {F::kConnect};
        if (is(value, "OPTIONS")) return {F::kOptions};
        return {};
      case FieldName::kScheme:
        if (!is_alpha(static_cast<unsigned char>(value[0])) || !all_of<Fast::kLower>(value, kSchemeChar)) return kBad;
        if (is(value, "http") || is(value, "https") || equals_ignoring_case(value, "http") ||
            equals_ignoring_case(value, "https")) {
          return {F::kHttpScheme};
        }
        return {};
      case FieldName::kPath:
        if (!valid_path(value)) return kBad;
        if (is(value, "*")) return {F::kPathAsterisk};
        if (value[0] != '/') return {F::kPathOther};  // judged at head end, with the scheme
        return {};
      case FieldName::kAuthority:
        return valid_authority(value) ? FieldFacts{} : kBad;
      default:
        return kBad;  // :status, :protocol (extended CONNECT is not offered) or unknown
    }
  }
  // A name classify_field recognised is one of ours, so already a valid one.
  if (kind == FieldName::kOther && !valid_name(name)) return kBad;  // upper case, SP, CTL
  if (!value.empty() && (is_ws(value.front()) || is_ws(value.back()))) return kBad;
  if (!valid_value(value)) return kBad;
  switch (kind) {
    case FieldName::kConnectionSpecific:
      return kBad;  // RFC 9113 8.2.2
    case FieldName::kTe:
      return is(value, "trailers") || equals_ignoring_case(value, "trailers") ? FieldFacts{} : kBad;
    case FieldName::kHost:
      return valid_authority(value) ? FieldFacts{} : kBad;
    case FieldName::kContentLength: {
      int64_t n;
      return parse_length(value, &n) ? FieldFacts{} : kBad;
    }
    default:
      return {};
  }
}

bool RequestRules::on_content_length(std::string_view value) noexcept {
  if (content_length_ >= 0 || !parse_length(value, &content_length_)) return fail();
  return true;
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
