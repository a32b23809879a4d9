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
  // c null: the completion is ignored (cancels, the close of a socket).
  static void bind(io_uring_sqe* sqe, Completion* c) { io_uring_sqe_set_data(sqe, c); }

  // One io_uring_enter: submits, and waits up to timeout_ms (0: don't wait, -1: forever)
  // for at least one completion. Then runs every completion; returns how many there were.
  unsigned submit_and_wait(int64_t timeout_ms);
  // Batches wake-ups under load: a wait that would sleep gathers up to `events` completions
  // for at most `usec` before returning with what has arrived (the kernel's min-wait,
  // IORING_FEAT_MIN_TIMEOUT, 6.12+). Costs at most `usec` of latency per wake-up; usec 0
  // or an older kernel: every completion wakes the loop at once.
  void set_batch_wait(unsigned usec, unsigned events);
  bool batch_wait_supported() const { return (ring_.features & kFeatMinTimeout) != 0; }

  io_uring* raw() { return &ring_; }

  // A sparse registered file table of `slots` entries, for sockets accepted as direct
  // descriptors (IORING_FILE_INDEX_ALLOC). The kernel caps a table at the soft
  // RLIMIT_NOFILE, but each ring has its own. Throws std::runtime_error if refused.
  void register_direct_table(unsigned slots);
  unsigned direct_slots() const { return direct_slots_; }

 private:
  // Not in Debian's liburing 2.3 headers; the value is the kernel's ABI.
  static constexpr unsigned kFeatMinTimeout = 1u << 15;
  // A turn with this many completions means load: a ping-pong caller brings one or two
  // (its request, our send), a loaded loop many more.
  static constexpr unsigned kLoadedTurn = 3;
  unsigned drain();
  int enter_with_min_wait(int64_t timeout_ms);

  io_uring ring_{};
  unsigned direct_slots_ = 0;
  unsigned batch_wait_usec_ = 0;
  unsigned batch_wait_events_ = 1;
  unsigned last_batch_ = 0;  // completions of the last wake-up
  struct Cqe {
    Completion* target;
    int res;
    uint32_t flags;
  };
  std::vector<Cqe> batch_;
};

}  // namespace uringrpc::loop
