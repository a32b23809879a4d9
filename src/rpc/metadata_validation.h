// Checks on metadata keys and values. The call layer validates what a handler asks to
// send (initial metadata, trailers) before it reaches nghttp2, and classifies incoming
// keys; the fuzzers feed it arbitrary bytes.
#pragma once

#include <string>
#include <string_view>

#include "uringrpc/metadata.h"

namespace uringrpc::rpc {

// Non-empty and only 0-9 a-z - _ . (the gRPC spec's header name alphabet).
bool is_valid_metadata_key(std::string_view key) noexcept;
// Ends in "-bin": the value is raw bytes, base64 on the wire.
bool is_binary_metadata_key(std::string_view key) noexcept;
// Printable ASCII 0x20-0x7E, possibly empty. Applies to keys that are not -bin.
bool is_valid_metadata_value(std::string_view value) noexcept;
// Keys a handler may not set because the transport owns them: "grpc-*", pseudo-headers
// (":*"), content-type, content-length (nghttp2 clients check it against DATA and reset
// the stream), te, host, and the HTTP/1 connection-specific headers HTTP/2 forbids
// (connection, keep-alive, proxy-connection, transfer-encoding, upgrade).
// user-agent is not reserved: harmless in a response, and gRPC C++ allows it.
bool is_reserved_metadata_key(std::string_view key) noexcept;

// Validates metadata a handler wants to send. Returns "" when valid; otherwise a
// one-line reason naming the first offending key and why, prefixed with `what`
// ("initial" or "trailing"), e.g.
//   invalid trailing metadata: key "Error" has uppercase character 'E' (keys must be lowercase 0-9a-z-_.)
// Keys are quoted with non-printable bytes escaped and cut at 64 bytes, so the reason
// is always one printable line.
std::string validate_outgoing_metadata(const Metadata& md, std::string_view what);

}  // namespace uringrpc::rpc
