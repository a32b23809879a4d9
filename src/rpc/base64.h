// Base64 (RFC 4648 standard alphabet) for "-bin" metadata values. The HTTP/2 -> gRPC
// call layer decodes incoming -bin headers and encodes outgoing ones; the fuzzers check
// the round trip.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace uringrpc::rpc {

// gRPC emits -bin values unpadded, hence the default.
std::string base64_encode(std::string_view data, bool pad = false);

// Accepts padded and unpadded input. nullopt on a character outside the alphabet
// (whitespace included), '=' anywhere but as the padding of a multiple-of-4 input, or an
// impossible length (len % 4 == 1 once padding is removed). Stray low bits in the last
// character are ignored, as most decoders do (RFC 4648 3.5 allows either).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace uringrpc::rpc
