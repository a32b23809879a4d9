// Frame and HPACK literal encoding for the tests; see h2_frames.h.
#include "h2_frames.h"

namespace uringrpc::testing::h2 {

namespace {
// HPACK integer with a 7-bit prefix (string lengths, H bit clear: no Huffman).
void put_length(std::string& out, size_t n) {
  if (n < 127) {
    out.push_back(static_cast<char>(n));
    return;
  }
  out.push_back(static_cast<char>(127));
  n -= 127;
  while (n >= 128) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
}
}  // namespace

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  f.reserve(9 + payload.size());
  uint32_t len = static_cast<uint32_t>(payload.size());
  for (int shift : {16, 8, 0}) f.push_back(static_cast<char>(len >> shift));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift : {24, 16, 8, 0}) f.push_back(static_cast<char>(stream >> shift));
  f.append(payload);
  return f;
}

std::string client_hello() { return std::string(kClientPreface) + frame(kSettings, 0, 0, ""); }

std::string literal(std::string_view name, std::string_view value) {
  std::string out(1, '\0');
  put_length(out, name.size());
  out.append(name);
  put_length(out, value.size());
  out.append(value);
  return out;
}

std::string request_block(std::string_view path, std::string_view authority, std::string_view content_type) {
  return literal(":method", "POST") + literal(":scheme", "http") + literal(":path", path) +
         literal(":authority", authority) + literal("content-type", content_type) + literal("te", "trailers");
}

std::string grpc_message(std::string_view payload, uint8_t flag) {
  std::string m(1, static_cast<char>(flag));
  uint32_t n = static_cast<uint32_t>(payload.size());
  for (int shift : {24, 16, 8, 0}) m.push_back(static_cast<char>(n >> shift));
  m.append(payload);
  return m;
}

uint32_t be32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(b[at + 3])};
}

size_t parse_frame(std::string_view b, Frame& f) {
  if (b.size() < 9) return 0;
  size_t len = (size_t{static_cast<uint8_t>(b[0])} << 16) | (size_t{static_cast<uint8_t>(b[1])} << 8) |
               size_t{static_cast<uint8_t>(b[2])};
  if (b.size() < 9 + len) return 0;
  f.type = static_cast<uint8_t>(b[3]);
  f.flags = static_cast<uint8_t>(b[4]);
  f.stream = be32(b, 5) & 0x7fffffffu;
  f.payload.assign(b.substr(9, len));
  return 9 + len;
}

}  // namespace uringrpc::testing::h2
