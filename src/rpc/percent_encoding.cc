// grpc-message percent-encoding. Sizes the result before writing so a long status
// message costs one allocation.
#include "rpc/percent_encoding.h"

#include <cstdint>

namespace uringrpc::rpc {
namespace {

constexpr char kHexDigits[] = "0123456789ABCDEF";

bool needs_escape(uint8_t c) { return c < 0x20 || c > 0x7E || c == '%'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string percent_encode_message(std::string_view message) {
  size_t escapes = 0;
  for (char c : message) escapes += needs_escape(static_cast<uint8_t>(c));
  if (escapes == 0) return std::string(message);
  std::string out;
  out.reserve(message.size() + 2 * escapes);
  for (char c : message) {
    const auto b = static_cast<uint8_t>(c);
    if (needs_escape(b)) {
      out += '%';
      out += kHexDigits[b >> 4];
      out += kHexDigits[b & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

std::string percent_decode_message(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());  // decoding only shrinks
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && encoded.size() - i >= 3) {
      const int hi = hex_value(encoded[i + 1]);
      const int lo = hex_value(encoded[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>((hi << 4) | lo);
        i += 2;
        continue;
      }
    }
    out += encoded[i];
  }
  return out;
}

}  // namespace uringrpc::rpc
