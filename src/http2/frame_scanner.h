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
  // sets *found when a frame of interest was recognised. DATA is reported unless a complete
  // header block without END_STREAM (HEADERS with END_HEADERS) opened its stream earlier
  // in the same read (see opened_lo_).
  size_t scan(const uint8_t* p, size_t n, Found* found);
  // A new read begins: frames of the previous one were followed by output, which may have
  // closed their streams.
  void new_read() { opened_lo_ = opened_hi_ = 0; }

 private:
  bool opened(int32_t id) const {
    return opened_lo_ != 0 && id >= opened_lo_ && id <= opened_hi_ && ((id ^ opened_lo_) & 1) == 0;
  }

  // Widest first, so that the scanner takes no more room in a Session than before it kept
  // the run of opened streams (64 bytes: 100,000 idle connections count).
  size_t preface_left_ = 24;  // the client connection preface precedes the frames
  size_t header_have_ = 0;
  size_t payload_left_ = 0;
  size_t priority_have_ = 0;
  int32_t stream_ = 0;
  // Streams opened in this read by a complete request head without END_STREAM, as a run
  // of consecutive client identifiers (lo, lo + 2, ..., hi); lo 0: none.
  int32_t opened_lo_ = 0;
  int32_t opened_hi_ = 0;
  int32_t newest_ = 0;  // the highest stream identifier of a HEADERS frame so far
  uint8_t header_[9] = {};
  uint8_t type_ = 0;
  uint8_t priority_[5] = {};  // a PRIORITY frame's dependency and weight
};

}  // namespace uringrpc::http2
