// io_uring setup with fallbacks, SQE hand-out, and the drain-then-dispatch of completions.
#include "loop/ring.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "loop/log.h"

namespace uringrpc::loop {

Ring::Ring(unsigned entries) {
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
            IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4;
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc == 0) {
    defer_taskrun_ = true;
  } else {
    URINGRPC_LOG(LogLevel::kWarn, "io_uring refused SINGLE_ISSUER|DEFER_TASKRUN (%s); using a plain ring",
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

io_uring_sqe* Ring::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (!sqe) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

unsigned Ring::submit_and_wait(int64_t timeout_ms) {
  ++enters_;
  int rc;
  if (timeout_ms == 0) {
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
    URINGRPC_LOG(LogLevel::kError, "io_uring_enter failed: %s", std::strerror(-rc));
    std::abort();
  }
  return drain();
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
