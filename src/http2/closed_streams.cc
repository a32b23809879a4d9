// The records of closed streams and what a late frame on one gets (RFC 9113 5.1, 5.1.1).
#include "http2/closed_streams.h"

#include <algorithm>
#include <cstring>

#include "base/small_pool.h"

namespace uringrpc::http2 {

void ClosedStreams::remember(int32_t id, How how) {
  if (!spill_ && next_ == kInline) {
    // The inline records are full: move to the big ring (they fill it from its start).
    spill_ = static_cast<Record*>(base::pool_allocate(kRing * sizeof(Record)));
    std::memset(static_cast<void*>(spill_), 0, kRing * sizeof(Record));
    std::memcpy(static_cast<void*>(spill_), inline_, sizeof inline_);
  }
  records()[next_] = {id, how};
  // Inline records fill up in order (the next one after them spills); the big ring wraps.
  next_ = static_cast<uint8_t>(spill_ ? (next_ + 1) % kRing : next_ + 1);
}

void ClosedStreams::forget_all(int32_t last_seen_id) {
  if (!spill_ && next_ == 0) return;  // nothing remembered
  if (spill_) base::pool_deallocate(spill_, kRing * sizeof(Record));
  spill_ = nullptr;
  std::memset(static_cast<void*>(inline_), 0, sizeof inline_);
  next_ = 0;
  forgotten_through_ = std::max(forgotten_through_, last_seen_id);
}

Verdict ClosedStreams::on_frame(int32_t id, bool headers, int32_t last_opened_id) const {
  if (id <= 0 || id > last_opened_id) return Verdict::ok();
  const Record* r = records();
  for (size_t i = 0; i < capacity(); ++i) {
    if (r[i].id != id) continue;
    switch (r[i].how) {
      case How::kPeerReset:
        // RFC 9113 5.1 makes this a stream error STREAM_CLOSED; 5.4 lets us end the
        // connection instead, as nghttpd does: a peer that writes on a stream it reset
        // itself is broken, and no well-behaved client's request waits behind it.
        return Verdict::goaway(kStreamClosed, "frame after the client's RST_STREAM");
      case How::kPeerEnded:  // after its END_STREAM, nothing but PRIORITY/WINDOW_UPDATE/RST
        return Verdict::goaway(kStreamClosed, "frame on a closed stream");
      case How::kWeReset:  // it may not have seen our RST_STREAM yet
        return Verdict::ok();
    }
  }
  // An identifier below one already used that we never saw is closed without having been
  // opened (RFC 9113 5.1.1): a new request on it is a connection error.
  if (headers && id > oldest_remembered_id()) {
    return Verdict::goaway(kProtocolError, "HEADERS on a stream identifier already passed");
  }
  return Verdict::ok();
}

int32_t ClosedStreams::oldest_remembered_id() const {
  const Record* r = records();
  int32_t oldest = 0;
  bool any = false;
  for (size_t i = 0; i < capacity(); ++i) {
    // Not full: we remember every stream closed since the records were last dropped.
    if (r[i].id == 0) return forgotten_through_;
    if (!any || r[i].id < oldest) oldest = r[i].id;
    any = true;
  }
  return std::max(oldest, forgotten_through_);
}

}  // namespace uringrpc::http2
