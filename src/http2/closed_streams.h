// ClosedStreams: how a connection's recently closed streams ended, so that a frame that
// arrives on one gets the answer RFC 9113 5.1 gives it. nghttp2 forgets a stream as soon as
// it closes when RFC 7540 priorities are off, and then drops such frames silently; the
// Session asks this record instead (session_callbacks.cc) and carries out its verdict.
// Kept in proportion to use: the first few records live inline, and a connection that
// closes more moves to a pooled ring of 64, which the idle trim gives back (most idle
// connections made only a call or two).
#pragma once

#include <cstddef>
#include <cstdint>

#include "http2/peer_limits.h"

namespace uringrpc::http2 {

class ClosedStreams {
 public:
  // How the stream ended, as the peer may still see it.
  enum class How : uint8_t {
    kPeerReset,  // the peer sent RST_STREAM: anything after it is a connection error
    kPeerEnded,  // the peer sent END_STREAM (whatever we answered): a connection error
    kWeReset,    // we reset it before the peer ended it: its frames may still be in flight
  };

  ClosedStreams() = default;
  ~ClosedStreams() { forget_all(0); }
  ClosedStreams(const ClosedStreams&) = delete;
  ClosedStreams& operator=(const ClosedStreams&) = delete;

  void remember(int32_t id, How how);
  // Drops every record (the idle trim). Streams up to last_seen_id then count as long
  // gone: a late frame on one is ignored, a new request on one is still refused.
  void forget_all(int32_t last_seen_id);

  // The answer to a DATA (headers false) or HEADERS frame on stream `id`, which is not
  // open. last_opened_id: the highest stream the peer has opened; above it a HEADERS
  // opens a new stream and is not ours to judge.
  Verdict on_frame(int32_t id, bool headers, int32_t last_opened_id) const;

  size_t capacity() const { return spill_ ? kRing : kInline; }

  static constexpr size_t kRing = 64;
  static constexpr size_t kInline = 4;

 private:
  struct [[gnu::packed]] Record {  // 5 bytes, not 8
    int32_t id;
    How how;
  };
  Record* records() { return spill_ ? spill_ : inline_; }
  const Record* records() const { return spill_ ? spill_ : inline_; }
  // Streams at or below this may have been closed long ago by a reset of ours: they get
  // the benefit of the doubt.
  int32_t oldest_remembered_id() const;

  Record inline_[kInline] = {};
  uint8_t next_ = 0;
  Record* spill_ = nullptr;
  int32_t forgotten_through_ = 0;
};

}  // namespace uringrpc::http2
