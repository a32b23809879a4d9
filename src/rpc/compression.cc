// gzip and deflate for gRPC messages on libdeflate (chosen over zlib by
// perf/compression_bench.cc: see perf/README.md, "Compression library"), and the header
// names. Called from Call and ConnectionCalls through compression.h, and by the fuzzer.
#include "rpc/compression.h"

#include <libdeflate.h>

#include <algorithm>
#include <string>

namespace uringrpc::rpc {
namespace {

constexpr int kLevel = 6;  // zlib's default, what gRPC implementations on zlib use
constexpr size_t kGzipTrailer = 8;  // CRC32, then ISIZE (the input size mod 2^32)
constexpr size_t kMinGuess = 4096;
constexpr size_t kMaxScratch = 1u << 20;

// One compressor and one decompressor per shard thread, made on first use: a server that
// never sees compression never allocates them (a level-6 compressor is several hundred KiB).
struct ThreadCodecs {
  libdeflate_compressor* compressor = nullptr;
  libdeflate_decompressor* decompressor = nullptr;
  // Where messages are compressed before the (usually much smaller) result is copied out:
  // a fresh buffer of compress_bound() bytes per message was zero-filled and page-faulted
  // in each time, 40% of the server's CPU in perf/bench.py's unary-64k-gzip. It only grows,
  // up to kMaxScratch; larger messages get a buffer of their own.
  std::string scratch;
  ~ThreadCodecs() {
    if (compressor) libdeflate_free_compressor(compressor);
    if (decompressor) libdeflate_free_decompressor(decompressor);
  }
};
thread_local ThreadCodecs codecs;

libdeflate_compressor* compressor() {
  if (!codecs.compressor) codecs.compressor = libdeflate_alloc_compressor(kLevel);
  return codecs.compressor;
}

libdeflate_decompressor* decompressor() {
  if (!codecs.decompressor) codecs.decompressor = libdeflate_alloc_decompressor();
  return codecs.decompressor;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// First output buffer size: gzip's trailer says how large the output is (mod 2^32, and
// a liar only makes us grow or stop at the limit); deflate says nothing, so guess.
size_t first_guess(Compression c, std::string_view in, size_t limit) {
  size_t guess = std::max(in.size() * 4, kMinGuess);
  if (c == Compression::kGzip && in.size() >= kGzipTrailer) {
    const auto* t = reinterpret_cast<const uint8_t*>(in.data() + in.size() - 4);
    guess = size_t{t[0]} | size_t{t[1]} << 8 | size_t{t[2]} << 16 | size_t{t[3]} << 24;
  }
  return std::min(guess, limit);
}

}  // namespace

std::optional<Compression> parse_encoding(std::string_view name) noexcept {
  if (name.empty() || name == "identity") return Compression::kNone;
  if (name == "gzip") return Compression::kGzip;
  if (name == "deflate") return Compression::kDeflate;
  return std::nullopt;
}

std::string_view encoding_name(Compression c) noexcept {
  switch (c) {
    case Compression::kGzip: return "gzip";
    case Compression::kDeflate: return "deflate";
    case Compression::kNone: break;
  }
  return "identity";
}

EncodingSet parse_accept_encoding(std::string_view list) noexcept {
  EncodingSet set = encoding_bit(Compression::kNone);
  // What gRPC C++, Go and Java send on every call: one compare instead of a scan.
  if (list == kAcceptEncoding) return set | encoding_bit(Compression::kDeflate) | encoding_bit(Compression::kGzip);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view name = trim(list.substr(0, comma));
    if (auto c = parse_encoding(name); c && !name.empty()) set |= encoding_bit(*c);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return set;
}

Inflated inflate_message(Compression c, std::string_view in, size_t limit) {
  libdeflate_decompressor* d = decompressor();
  if (!d) return {InflateError::kNoMemory, {}};
  size_t capacity = first_guess(c, in, limit);
  for (;;) {
    std::string out(capacity, '\0');
    size_t in_used = 0, out_size = 0;
    libdeflate_result r =
        c == Compression::kGzip
            ? libdeflate_gzip_decompress_ex(d, in.data(), in.size(), out.data(), capacity, &in_used, &out_size)
            : libdeflate_zlib_decompress_ex(d, in.data(), in.size(), out.data(), capacity, &in_used, &out_size);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
      // The output outgrew the buffer. At the limit that is the answer; below it, grow and
      // start over (one-shot API): the passes add up to at most 4/3 of the final one.
      if (capacity >= limit) return {InflateError::kTooLarge, {}};
      capacity = capacity > limit / 4 ? limit : std::max(capacity * 4, kMinGuess);
      continue;
    }
    // A second gzip member or trailing garbage is as wrong as a bad block.
    if (r != LIBDEFLATE_SUCCESS || in_used != in.size()) return {InflateError::kCorrupt, {}};
    out.resize(out_size);
    // A guess far above the result would pin the difference while the message waits.
    if (out.capacity() > 2 * out_size + kMinGuess) out.shrink_to_fit();
    return {InflateError::kNone, Bytes(std::move(out))};
  }
}

std::optional<Bytes> deflate_message(Compression c, std::string_view in) {
  libdeflate_compressor* z = compressor();
  if (!z) return std::nullopt;
  const bool gzip = c == Compression::kGzip;
  // A result as large as the input is not worth sending compressed: stop the compressor there.
  const size_t bound = gzip ? libdeflate_gzip_compress_bound(z, in.size()) : libdeflate_zlib_compress_bound(z, in.size());
  std::string own;
  std::string& out = bound <= kMaxScratch ? codecs.scratch : own;
  if (out.size() < bound) out.resize(bound);
  size_t n = gzip ? libdeflate_gzip_compress(z, in.data(), in.size(), out.data(), out.size())
                  : libdeflate_zlib_compress(z, in.data(), in.size(), out.data(), out.size());
  if (n == 0 || n >= in.size()) return std::nullopt;
  if (&out == &own) {
    own.resize(n);
    return Bytes(std::move(own));
  }
  return Bytes(std::string(out.data(), n));
}

std::optional<Status> CallCompression::inflate(Bytes& message, size_t limit) const {
  if (request_ == Compression::kNone) {
    return Status{StatusCode::INTERNAL, "compressed message received without grpc-encoding"};
  }
  Inflated r = inflate_message(request_, message.view(), limit);
  switch (r.error) {
    case InflateError::kNone:
      message = std::move(r.message);
      return std::nullopt;
    case InflateError::kTooLarge:
      return Status{StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max when decompressed (over " +
                                                        std::to_string(limit) + " bytes)"};
    case InflateError::kCorrupt:
      return Status{StatusCode::INTERNAL,
                    "could not decompress a " + std::string(encoding_name(request_)) + " message: corrupt or truncated"};
    case InflateError::kNoMemory: break;
  }
  return Status{StatusCode::RESOURCE_EXHAUSTED, "out of memory decompressing a message"};
}

bool CallCompression::compress_slow(Bytes& message) const {
  auto packed = deflate_message(response_, message.view());
  if (!packed) return false;
  message = std::move(*packed);
  return true;
}

void CallCompression::add_response_headers(http2::HeaderList& h, bool with_messages) const {
  // Literals: nghttp2 may refer to them rather than copy them (HeaderField::lasting).
  if (with_messages && response_ != Compression::kNone) h.push_back({"grpc-encoding", encoding_name(response_), true});
  h.push_back({"grpc-accept-encoding", kAcceptEncoding, true});
}

}  // namespace uringrpc::rpc
