// HTTP/2 frames built and parsed by hand for the C++ tests (unit, end-to-end raw-socket) and
// the connection fuzzer: nothing is validated, so a test can send exactly the malformed
// frame it means to. HPACK here is literals only, never indexed and never Huffman-coded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace uringrpc::testing::h2 {

// Frame types, flags and error codes (RFC 9113 sections 6 and 7).
constexpr uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kPing = 0x6, kGoaway = 0x7,
                  kWindowUpdate = 0x8, kContinuation = 0x9;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPriority = 0x20;
constexpr uint32_t kProtocolError = 0x1, kCompressionError = 0x9;

// The client connection preface, without the SETTINGS frame that must follow it.
inline constexpr std::string_view kClientPreface{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"};

// One frame, byte for byte; the stream id goes out as given (the reserved bit too).
std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload);
// The preface and an empty SETTINGS frame: what a client sends first.
std::string client_hello();

// HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2), any length.
std::string literal(std::string_view name, std::string_view value);
// A gRPC request's header block as literals: POST, http, path, authority, content-type, te.
std::string request_block(std::string_view path, std::string_view authority = "localhost",
                          std::string_view content_type = "application/grpc");
// The 5-byte gRPC message prefix (flag, big-endian length) and the payload.
std::string grpc_message(std::string_view payload, uint8_t flag = 0);

// A frame read back: the header's fields and a copy of the payload.
struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;  // reserved bit cleared
  std::string payload;
};
// Parses the first frame of `bytes` into `f`; returns its size, or 0 if `bytes` holds no
// whole frame yet.
size_t parse_frame(std::string_view bytes, Frame& f);
// A big-endian 32-bit field at `at` (error codes, window increments, settings values).
uint32_t be32(std::string_view bytes, size_t at);

}  // namespace uringrpc::testing::h2
