// Percent-encoding of the grpc-message trailer, per the gRPC over HTTP/2 spec. The call
// layer encodes a Status message before it goes into trailers (and decodes one in tests
// and tools); the fuzzers check the round trip.
#pragma once

#include <string>
#include <string_view>

namespace uringrpc::rpc {

// Every byte outside 0x20-0x7E, and '%' itself, becomes %XX (uppercase hex). UTF-8 is
// encoded byte by byte, as the spec asks.
std::string percent_encode_message(std::string_view message);

// Never fails: "%XX" with two hex digits (either case) becomes that byte; a '%' not
// followed by two hex digits is kept literally, as are all other bytes.
std::string percent_decode_message(std::string_view encoded);

}  // namespace uringrpc::rpc
