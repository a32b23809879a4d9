// Frame boundaries only: lengths, types and stream ids; payloads are skipped except the
// five bytes of a PRIORITY frame. nghttp2 has validated the framing already (a bad frame
// length ends the connection before the scanner sees it).
#include "http2/frame_scanner.h"

#include <algorithm>

namespace uringrpc::http2 {
namespace {
constexpr uint8_t kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRstStream = 0x3;
constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4;
}

size_t FrameScanner::scan(const uint8_t* p, size_t n, Found* found) {
  size_t used = 0;
  while (used < n) {
    if (preface_left_ > 0) {
      size_t k = std::min(preface_left_, n - used);
      preface_left_ -= k;
      used += k;
      continue;
    }
    if (header_have_ < 9) {
      const uint8_t* h;
      if (header_have_ == 0 && n - used >= 9) {
        h = p + used;  // the usual case: the whole header is in this chunk, read in place
        used += 9;
      } else {
        size_t k = std::min<size_t>(9 - header_have_, n - used);
        std::copy(p + used, p + used + k, header_ + header_have_);
        header_have_ += k;
        used += k;
        if (header_have_ < 9) break;
        h = header_;
      }
      header_have_ = 9;
      payload_left_ = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      type_ = h[3];
      stream_ = static_cast<int32_t>(((uint32_t{h[5]} & 0x7f) << 24) | (uint32_t{h[6]} << 16) |
                                     (uint32_t{h[7]} << 8) | h[8]);
      priority_have_ = 0;
      if (payload_left_ == 0) header_have_ = 0;  // the next frame starts here
      // DATA on a stream whose request head came complete, without END_STREAM, earlier in
      // this read (a request's body: the usual case, after its HEADERS or after a batch of
      // HEADERS) is on a stream nghttp2 opened and still holds when it reads the DATA:
      // within a read nghttp2 forgets a stream only for a RST_STREAM it receives (or an
      // END_STREAM once our side is closed, which for a stream opened in this read it is
      // not); otherwise streams close as frames go out, between reads. Nothing to judge,
      // and no reason to make nghttp2 stop before it. Such streams are kept as a run of
      // consecutive client identifiers [opened_lo_, opened_hi_], the shape of a batch.
      // A new stream's identifier is above every one before it; a HEADERS at or below is
      // trailers, or an error nghttp2 and the session deal with.
      if (type_ == kHeaders && stream_ > newest_) {
        newest_ = stream_;
        if ((h[4] & (kEndHeaders | kEndStream)) != kEndHeaders) {
          opened_lo_ = opened_hi_ = 0;  // the run breaks
        } else if (opened_lo_ != 0 && stream_ == opened_hi_ + 2) {
          opened_hi_ = stream_;
        } else {
          opened_lo_ = opened_hi_ = stream_;
        }
      } else if (type_ == kRstStream && opened(stream_)) {
        opened_lo_ = opened_hi_ = 0;
      }
      bool after_own_headers = type_ == kData && opened(stream_);
      if (type_ == kData && stream_ != 0 && !after_own_headers) {
        *found = {Found::kData, stream_};
        return used;
      }
      continue;
    }
    size_t k = std::min(payload_left_, n - used);
    if (type_ == kPriority && priority_have_ < 5) {
      size_t take = std::min(k, 5 - priority_have_);
      std::copy(p + used, p + used + take, priority_ + priority_have_);
      priority_have_ += take;
      if (priority_have_ == 5) {
        int32_t depends_on = static_cast<int32_t>(((uint32_t{priority_[0]} & 0x7f) << 24) |
                                                  (uint32_t{priority_[1]} << 16) | (uint32_t{priority_[2]} << 8) |
                                                  priority_[3]);
        if (depends_on == stream_ && stream_ != 0) *found = {Found::kPrioritySelfDependency, stream_};
      }
    }
    payload_left_ -= k;
    used += k;
    if (payload_left_ == 0) header_have_ = 0;
    if (found->kind != Found::kNone) return used;
  }
  return used;
}

}  // namespace uringrpc::http2
