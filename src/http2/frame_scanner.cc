// Frame boundaries only: lengths, types and stream ids; payloads are skipped except the
// five bytes of a PRIORITY frame. nghttp2 has validated the framing already (a bad frame
// length ends the connection before the scanner sees it).
#include "http2/frame_scanner.h"

#include <algorithm>

namespace uringrpc::http2 {
namespace {
constexpr uint8_t kData = 0x0, kPriority = 0x2;
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
      size_t k = std::min<size_t>(9 - header_have_, n - used);
      std::copy(p + used, p + used + k, header_ + header_have_);
      header_have_ += k;
      used += k;
      if (header_have_ < 9) break;
      payload_left_ = (size_t{header_[0]} << 16) | (size_t{header_[1]} << 8) | header_[2];
      type_ = header_[3];
      stream_ = static_cast<int32_t>(((uint32_t{header_[5]} & 0x7f) << 24) | (uint32_t{header_[6]} << 16) |
                                     (uint32_t{header_[7]} << 8) | header_[8]);
      priority_have_ = 0;
      if (payload_left_ == 0) header_have_ = 0;  // the next frame starts here
      if (type_ == kData && stream_ != 0) {
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
