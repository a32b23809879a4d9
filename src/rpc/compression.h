// gRPC message compression: the grpc-encoding and grpc-accept-encoding names, whole-message
// gzip and deflate on libdeflate, and inflation bounded by the receive size limit.
// ConnectionCalls reads a request's headers into a Call's CallCompression; Call asks it to
// inflate each compressed request message and to compress each response message.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "http2/stream.h"
#include "uringrpc/bytes.h"
#include "uringrpc/compression.h"
#include "uringrpc/status.h"

namespace uringrpc::rpc {

// What we accept, on every response: gRPC clients learn from it what they may send.
inline constexpr std::string_view kAcceptEncoding = "identity,deflate,gzip";

// "identity" (or no header) is kNone; nullopt for an encoding we do not speak.
std::optional<Compression> parse_encoding(std::string_view name) noexcept;
std::string_view encoding_name(Compression c) noexcept;

// A set of Compression values, one bit each.
using EncodingSet = uint8_t;
constexpr EncodingSet encoding_bit(Compression c) noexcept { return EncodingSet(1u << static_cast<unsigned>(c)); }
// The algorithms a client's grpc-accept-encoding lists ("identity, deflate,gzip"); names
// we do not know are skipped. Identity is always in.
EncodingSet parse_accept_encoding(std::string_view list) noexcept;

enum class InflateError { kNone, kTooLarge, kCorrupt, kNoMemory };
struct Inflated {
  InflateError error = InflateError::kNone;
  Bytes message;  // when error is kNone
};
// Inflates one whole message. Never holds more than `limit` bytes of output: the buffer
// starts at a guess (gzip's trailer, or 4x the input) and grows 4x up to `limit`; data
// that does not fit in `limit` is kTooLarge, exactly `limit` bytes is fine. Data that is
// corrupt, truncated, or followed by extra bytes is kCorrupt. c must not be kNone.
Inflated inflate_message(Compression c, std::string_view in, size_t limit);
// Compresses one whole message (level 6, zlib's default); nullopt when that would not make
// it smaller (it is then sent as it is) or memory ran out. c must not be kNone.
std::optional<Bytes> deflate_message(Compression c, std::string_view in);

// One call's compression: what the request uses, what the client accepts, and what the
// responses use. Three bytes in the Call; an uncompressed call does no work here beyond
// reading the request's two headers.
class CallCompression {
 public:
  void start(Compression request, EncodingSet client_accepts, Compression response_default) noexcept {
    request_ = request;
    accepts_ = client_accepts;
    set_response(response_default);
  }
  // The handler's (or the server default's) choice; falls back to kNone for a client that
  // did not list it in grpc-accept-encoding. Call before the response headers go out.
  void set_response(Compression c) noexcept { response_ = (accepts_ & encoding_bit(c)) ? c : Compression::kNone; }
  Compression response() const noexcept { return response_; }

  // A request message arrived with the compressed flag: replaces it with its inflated
  // form, or returns the status that ends the call.
  std::optional<Status> inflate(Bytes& message, size_t limit) const;
  // A response message about to be framed: compresses it when the call compresses and
  // the write allows. Returns the message's compressed flag.
  bool compress(Bytes& message, bool no_compress) const {
    if (response_ == Compression::kNone || no_compress) return false;
    return compress_slow(message);
  }
  // grpc-accept-encoding always; grpc-encoding when messages will follow and may be compressed.
  void add_response_headers(http2::HeaderList& h, bool with_messages) const;

 private:
  bool compress_slow(Bytes& message) const;

  Compression request_ = Compression::kNone;
  Compression response_ = Compression::kNone;
  EncodingSet accepts_ = encoding_bit(Compression::kNone);
};

}  // namespace uringrpc::rpc
