// ResponseChecker: what connection_fuzz asserts about the bytes the server writes. It
// reads them as a client would, independently of the server's code: whole HTTP/2 frames,
// header blocks that decode (nghttp2's HPACK inflater), and on gRPC streams DATA that is
// a sequence of well-formed messages, never cut short by the trailers.
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "fuzz_check.h"

namespace uringrpc::fuzz {

class ResponseChecker {
 public:
  ResponseChecker() { FUZZ_CHECK(nghttp2_hd_inflate_new(&inflater_) == 0); }
  ~ResponseChecker() { nghttp2_hd_inflate_del(inflater_); }
  ResponseChecker(const ResponseChecker&) = delete;
  ResponseChecker& operator=(const ResponseChecker&) = delete;

  // Output arrives in whatever pieces the transport was handed; frames may span them.
  void feed(std::string_view bytes) {
    pending_.append(bytes);
    size_t pos = 0;
    while (pending_.size() - pos >= 9) {
      const auto* h = reinterpret_cast<const uint8_t*>(pending_.data() + pos);
      const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      if (pending_.size() - pos - 9 < length) break;
      const uint32_t stream = ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]) &
                              0x7fffffffu;
      on_frame(h[3], h[4], stream, std::string_view(pending_.data() + pos + 9, length));
      pos += 9 + length;
    }
    pending_.erase(0, pos);
  }

 private:
  enum : uint8_t { kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kPushPromise = 5, kPing = 6,
                   kGoaway = 7, kContinuation = 9 };
  enum : uint8_t { kEndStream = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPriority = 0x20 };

  struct StreamState {
    bool headers_seen = false;
    bool grpc = false;
    bool ended = false;  // END_STREAM sent: nothing but RST_STREAM may follow
    // The client-side deframer: bytes still due for the current prefix or payload.
    size_t prefix_have = 0;
    uint8_t prefix[5] = {};
    size_t payload_left = 0;
  };

  void on_frame(uint8_t type, uint8_t flags, uint32_t id, std::string_view payload) {
    // A header block is contiguous: CONTINUATION frames for it and nothing else.
    if (continuing_) {
      FUZZ_CHECK(type == kContinuation && id == block_stream_);
      block_.append(payload);
      if (flags & kEndHeaders) end_block();
      return;
    }
    FUZZ_CHECK(type != kContinuation);
    FUZZ_CHECK(type != kPushPromise);  // a gRPC server never pushes
    if (type == kSettings || type == kPing || type == kGoaway) {
      FUZZ_CHECK(id == 0);
      return;
    }
    if (type != kData && type != kHeaders && type != kRstStream) return;
    FUZZ_CHECK(id != 0 && id % 2 == 1);  // only client-opened streams
    StreamState& s = streams_[id];
    if (type == kRstStream) {
      s.ended = true;
      return;
    }
    FUZZ_CHECK(!s.ended);
    // We never pad nor send priorities, so the payload is the content itself.
    FUZZ_CHECK((flags & (kPadded | kPriority)) == 0);
    if (type == kHeaders) {
      block_.assign(payload);
      block_stream_ = id;
      block_end_stream_ = flags & kEndStream;
      if (flags & kEndHeaders) end_block();
      else continuing_ = true;
      return;
    }
    FUZZ_CHECK(s.headers_seen);  // DATA only after the response headers
    if (s.grpc) deframe(s, payload);
    if (flags & kEndStream) end_stream(s);
  }

  void end_block() {
    continuing_ = false;
    StreamState& s = streams_[block_stream_];
    bool has_status = false, has_grpc_status = false;
    std::string content_type;
    const auto* in = reinterpret_cast<const uint8_t*>(block_.data());
    size_t left = block_.size();
    for (;;) {
      nghttp2_nv nv;
      int inflate_flags = 0;
      const ssize_t n = nghttp2_hd_inflate_hd2(inflater_, &nv, &inflate_flags, in, left, 1);
      FUZZ_CHECK(n >= 0);  // the server's header block must decode
      in += n;
      left -= static_cast<size_t>(n);
      if (inflate_flags & NGHTTP2_HD_INFLATE_EMIT) {
        const std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
        if (name == ":status") has_status = true;
        if (name == "grpc-status") has_grpc_status = true;
        if (name == "content-type") content_type.assign(reinterpret_cast<const char*>(nv.value), nv.valuelen);
      }
      if (inflate_flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater_);
        break;
      }
      if (!(inflate_flags & NGHTTP2_HD_INFLATE_EMIT) && left == 0) break;
    }
    if (!s.headers_seen) {
      // Response headers (or Trailers-Only).
      FUZZ_CHECK(has_status);
      s.headers_seen = true;
      s.grpc = content_type.starts_with("application/grpc");
      if (s.grpc && block_end_stream_) FUZZ_CHECK(has_grpc_status);
    } else {
      // Trailers: only at the end of the stream, and with the status on gRPC streams.
      FUZZ_CHECK(block_end_stream_);
      FUZZ_CHECK(!has_status);
      if (s.grpc) FUZZ_CHECK(has_grpc_status);
    }
    if (block_end_stream_) end_stream(s);
  }

  // Whatever the flow-control window cut DATA into, the messages must be whole and
  // uncompressed (we advertise no compression).
  static void deframe(StreamState& s, std::string_view data) {
    size_t pos = 0;
    while (pos < data.size()) {
      if (s.payload_left > 0) {
        const size_t take = std::min(s.payload_left, data.size() - pos);
        s.payload_left -= take;
        pos += take;
        continue;
      }
      s.prefix[s.prefix_have++] = static_cast<uint8_t>(data[pos++]);
      if (s.prefix_have == 5) {
        FUZZ_CHECK(s.prefix[0] == 0);
        s.payload_left = (size_t{s.prefix[1]} << 24) | (size_t{s.prefix[2]} << 16) | (size_t{s.prefix[3]} << 8) |
                         s.prefix[4];
        s.prefix_have = 0;
      }
    }
  }

  static void end_stream(StreamState& s) {
    // The trailers never cut a message short.
    if (s.grpc) FUZZ_CHECK(s.prefix_have == 0 && s.payload_left == 0);
    s.ended = true;
  }

  nghttp2_hd_inflater* inflater_ = nullptr;
  std::string pending_;
  std::unordered_map<uint32_t, StreamState> streams_;
  std::string block_;
  uint32_t block_stream_ = 0;
  bool block_end_stream_ = false;
  bool continuing_ = false;
};

}  // namespace uringrpc::fuzz
