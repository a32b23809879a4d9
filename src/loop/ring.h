// Ring: one io_uring owned by one shard thread. It hands out SQEs (submitting when the SQ
// is full), enters the kernel once per loop turn, and copies completions out before
// anything runs, so a completion handler may queue new requests freely.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <vector>

#include "loop/completion.h"

namespace uringrpc::loop {

class Ring {
 public:
  // Tries SINGLE_ISSUER | DEFER_TASKRUN first and falls back (with a log line) where the
  // kernel refuses. Throws std::runtime_error if no ring can be made at all.
  explicit Ring(unsigned entries);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Never null: submits pending SQEs to make room when the SQ is full.
  io_uring_sqe* get_sqe();
  static void bind(io_uring_sqe* sqe, Completion* c) { io_uring_sqe_set_data(sqe, c); }

  // One io_uring_enter: submits, and waits up to timeout_ms (0: don't wait, -1: forever)
  // for at least one completion. Then runs every completion; returns how many there were.
  unsigned submit_and_wait(int64_t timeout_ms);
  // Requests no user_data: their completions are ignored (cancels, close of a socket).
  static constexpr uint64_t kIgnore = 0;

  io_uring* raw() { return &ring_; }
  bool defer_taskrun() const { return defer_taskrun_; }
  uint64_t enters() const { return enters_; }

 private:
  unsigned drain();

  io_uring ring_{};
  bool defer_taskrun_ = false;
  uint64_t enters_ = 0;
  struct Cqe {
    Completion* target;
    int res;
    uint32_t flags;
  };
  std::vector<Cqe> batch_;
};

}  // namespace uringrpc::loop
