// io_uring setup with fallbacks, SQE hand-out, and the drain-then-dispatch of completions.
#include "loop/ring.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "base/log.h"

namespace uringrpc::loop {

Ring::Ring(unsigned entries) {
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
            IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4;
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc != 0) {
    URINGRPC_LOG(base::LogLevel::kWarn, "io_uring refused SINGLE_ISSUER|DEFER_TASKRUN (%s); using a plain ring",
                 std::strerror(-rc));
    p = {};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &p);
    if (rc != 0) {
      throw std::runtime_error(std::string("io_uring_queue_init failed: ") + std::strerror(-rc));
    }
  }
  batch_.reserve(256);
}

Ring::~Ring() { io_uring_queue_exit(&ring_); }

void Ring::register_direct_table(unsigned slots) {
  // Registered from the shard's own thread: SINGLE_ISSUER rings refuse other tasks.
  int rc = io_uring_register_files_sparse(&ring_, slots);
  if (rc < 0) {
    throw std::runtime_error("cannot register a direct descriptor table of " + std::to_string(slots) +
                             " slots: " + std::strerror(-rc) +
                             (rc == -EMFILE ? " (a table may not exceed the soft RLIMIT_NOFILE)" : ""));
  }
  direct_slots_ = slots;
}

io_uring_sqe* Ring::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (!sqe) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Ring::set_batch_wait(unsigned usec, unsigned events) {
  batch_wait_usec_ = batch_wait_supported() && events > 1 ? usec : 0;
  batch_wait_events_ = events > 1 ? events : 1;
}

int Ring::enter_with_min_wait(int64_t timeout_ms) {
  // liburing 2.3 has no call that sets min_wait_usec, so publish the SQ tail the way its
  // submit does (single issuer, no SQPOLL) and enter with the extended argument ourselves.
  io_uring_sq& sq = ring_.sq;
  const unsigned tail = sq.sqe_tail;
  if (sq.sqe_head != tail) {
    sq.sqe_head = tail;
    io_uring_smp_store_release(sq.ktail, tail);
  }
  const unsigned to_submit = tail - io_uring_smp_load_acquire(sq.khead);
  // The min-wait only hands over to a finite timeout: without one the kernel would end
  // every idle sleep after `usec`. An hour stands in for "forever".
  const int64_t ms = timeout_ms < 0 ? int64_t{3600} * 1000 : timeout_ms;
  __kernel_timespec ts{};
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000;
  io_uring_getevents_arg arg{};
  arg.sigmask_sz = _NSIG / 8;
  arg.pad = batch_wait_usec_;  // min_wait_usec in kernels with IORING_FEAT_MIN_TIMEOUT
  arg.ts = reinterpret_cast<uint64_t>(&ts);
  const long rc = syscall(__NR_io_uring_enter, ring_.ring_fd, to_submit, batch_wait_events_,
                          IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
  return rc < 0 ? -errno : static_cast<int>(rc);
}

unsigned Ring::submit_and_wait(int64_t timeout_ms) {
  int rc;
  // Only a loop under load waits for a batch: after a turn with few completions (a lone
  // caller, ping-pong traffic) the next one wakes at once, so light load pays no latency.
  if (timeout_ms != 0 && batch_wait_usec_ != 0 && last_batch_ >= kLoadedTurn) {
    rc = enter_with_min_wait(timeout_ms);
  } else if (timeout_ms == 0) {
    rc = io_uring_submit_and_get_events(&ring_);
  } else if (timeout_ms < 0) {
    rc = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (timeout_ms % 1000) * 1000000;
    io_uring_cqe* cqe = nullptr;
    // With EXT_ARG the wait needs no timeout SQE; -ETIME is an ordinary wake-up.
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  // EINTR/ETIME are wake-ups; EAGAIN/EBUSY mean the CQ is full and draining fixes it.
  // Anything else is a broken ring: spinning on it would hide the bug, so stop loudly.
  if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN && rc != -EBUSY) {
    URINGRPC_LOG(base::LogLevel::kError, "io_uring_enter failed: %s", std::strerror(-rc));
    std::abort();
  }
  last_batch_ = drain();
  return last_batch_;
}

unsigned Ring::drain() {
  // Copy out first, advance once, then dispatch: a handler may submit and even reap
  // nothing recursively, and the CQ is free for the kernel while we run.
  unsigned total = 0;
  for (;;) {
    batch_.clear();
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      auto* target = static_cast<Completion*>(io_uring_cqe_get_data(cqe));
      if (target) batch_.push_back({target, cqe->res, cqe->flags});
    }
    if (seen == 0) return total;
    total += seen;
    io_uring_cq_advance(&ring_, seen);
    for (const Cqe& c : batch_) c.target->on_complete(c.res, c.flags);
    if (seen < 64) return total;
  }
}

}  // namespace uringrpc::loop
