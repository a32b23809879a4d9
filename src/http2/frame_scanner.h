// FrameScanner: follows frame boundaries in the raw bytes a session receives, for the few
// RFC 9113 rules nghttp2 cannot apply when RFC 7540 priorities are off: it then forgets
// closed streams and drops DATA on them, and PRIORITY frames, before any callback runs.
// The Session feeds it each chunk after nghttp2 has processed it, so stream state is
// current, and acts on what it reports.
#pragma once

#include <cstddef>
#include <cstdint>

namespace uringrpc::http2 {

class FrameScanner {
 public:
  struct Found {
    enum Kind { kNone, kData, kPrioritySelfDependency } kind = kNone;
    int32_t stream = 0;
  };

  // Consumes bytes up to the next thing worth reporting; returns how many it consumed and
  // sets *found when a frame of interest was recognised.
  size_t scan(const uint8_t* p, size_t n, Found* found);

 private:
  size_t preface_left_ = 24;  // the client connection preface precedes the frames
  uint8_t header_[9] = {};
  size_t header_have_ = 0;
  size_t payload_left_ = 0;
  uint8_t type_ = 0;
  int32_t stream_ = 0;
  uint8_t priority_[5] = {};  // a PRIORITY frame's dependency and weight
  size_t priority_have_ = 0;
};

}  // namespace uringrpc::http2
