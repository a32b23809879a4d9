// Table-driven base64. Both directions size the result exactly up front: one
// allocation, no reallocation, and no per-character branching beyond the table lookup.
#include "rpc/base64.h"

#include <array>
#include <cstdint>

namespace uringrpc::rpc {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr uint8_t kInvalid = 0xFF;

constexpr std::array<uint8_t, 256> make_decode_table() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (uint8_t i = 0; i < 64; ++i) table[static_cast<uint8_t>(kAlphabet[i])] = i;
  return table;
}

constexpr std::array<uint8_t, 256> kDecode = make_decode_table();

}  // namespace

std::string base64_encode(std::string_view data, bool pad) {
  const auto* in = reinterpret_cast<const uint8_t*>(data.data());
  const size_t n = data.size();
  const size_t full = n / 3;
  const size_t rest = n % 3;
  const size_t out_size = full * 4 + (rest == 0 ? 0 : (pad ? 4 : rest + 1));
  std::string out(out_size, '\0');
  char* o = out.data();
  for (size_t i = 0; i < full; ++i, in += 3) {
    const uint32_t v = (uint32_t{in[0]} << 16) | (uint32_t{in[1]} << 8) | in[2];
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  if (rest != 0) {
    const uint32_t v = (uint32_t{in[0]} << 16) | (rest == 2 ? uint32_t{in[1]} << 8 : 0);
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    if (rest == 2) *o++ = kAlphabet[(v >> 6) & 63];
    if (pad) {
      *o++ = '=';
      if (rest == 1) *o++ = '=';
    }
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  size_t n = text.size();
  // Padding is only recognised where it can be legal: at the end of a multiple of 4.
  // Any other '=' fails the table lookup below.
  if (n % 4 == 0 && n > 0 && text[n - 1] == '=') {
    --n;
    if (text[n - 1] == '=') --n;
  }
  const size_t full = n / 4;
  const size_t rest = n % 4;
  if (rest == 1) return std::nullopt;
  std::string out(full * 3 + (rest == 0 ? 0 : rest - 1), '\0');
  const auto* in = reinterpret_cast<const uint8_t*>(text.data());
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  for (size_t i = 0; i < full; ++i, in += 4) {
    const uint8_t a = kDecode[in[0]], b = kDecode[in[1]], c = kDecode[in[2]], d = kDecode[in[3]];
    // kInvalid has its top bits set; valid sextets never do.
    if ((a | b | c | d) & 0xC0) return std::nullopt;
    const uint32_t v = (uint32_t{a} << 18) | (uint32_t{b} << 12) | (uint32_t{c} << 6) | d;
    *o++ = static_cast<uint8_t>(v >> 16);
    *o++ = static_cast<uint8_t>(v >> 8);
    *o++ = static_cast<uint8_t>(v);
  }
  if (rest != 0) {
    const uint8_t a = kDecode[in[0]], b = kDecode[in[1]];
    const uint8_t c = rest == 3 ? kDecode[in[2]] : 0;
    if ((a | b | c) & 0xC0) return std::nullopt;
    const uint32_t v = (uint32_t{a} << 18) | (uint32_t{b} << 12) | (uint32_t{c} << 6);
    *o++ = static_cast<uint8_t>(v >> 16);
    if (rest == 3) *o++ = static_cast<uint8_t>(v >> 8);
  }
  return out;
}

}  // namespace uringrpc::rpc
