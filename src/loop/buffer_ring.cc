// Provided-buffer ring over memory we map ourselves (Debian's liburing 2.3 lacks
// io_uring_setup_buf_ring), registered with io_uring_register_buf_ring.
#include "loop/buffer_ring.h"

#include <sys/mman.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace uringrpc::loop {

BufferRing::BufferRing(io_uring* ring, uint32_t buffer_size, uint32_t buffer_count)
    : ring_(ring), buffer_size_(buffer_size), count_(buffer_count), free_(buffer_count) {
  if (count_ == 0 || (count_ & (count_ - 1)) != 0 || count_ > 32768) {
    throw std::invalid_argument("recv_buffer_count must be a power of two up to 32768");
  }
  ring_bytes_ = sizeof(io_uring_buf) * count_;
  memory_bytes_ = size_t(buffer_size_) * count_;
  void* mem = mmap(nullptr, ring_bytes_ + memory_bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("mmap of the receive buffer ring failed");
  br_ = static_cast<io_uring_buf_ring*>(mem);
  memory_ = static_cast<uint8_t*>(mem) + ring_bytes_;

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count_;
  reg.bgid = kGroupId;
  int rc = io_uring_register_buf_ring(ring_, &reg, 0);
  if (rc != 0) {
    munmap(mem, ring_bytes_ + memory_bytes_);
    throw std::runtime_error(std::string("io_uring_register_buf_ring failed: ") + std::strerror(-rc));
  }
  io_uring_buf_ring_init(br_);
  slots_.resize(count_);
  for (uint32_t i = 0; i < count_; ++i) {
    slots_[i].ring = this;
    slots_[i].id = static_cast<uint16_t>(i);
  }
  for (; added_ < count_ && added_ < kInitialInRing; ++added_) add(static_cast<uint16_t>(added_));
}

BufferRing::~BufferRing() {
  while (waiters_) unlink(*waiters_);
  io_uring_unregister_buf_ring(ring_, kGroupId);
  munmap(br_, ring_bytes_ + memory_bytes_);
}

void BufferRing::add(uint16_t id) noexcept {
  io_uring_buf_ring_add(br_, memory_ + size_t(id) * buffer_size_, buffer_size_, id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
  ++in_ring_;
}

Bytes BufferRing::take(uint16_t id, uint32_t len) {
  --free_;
  --in_ring_;
  // Grown here, before the kernel runs dry, so a receive never fails with -ENOBUFS while
  // buffers are still unused (the -ENOBUFS path waits for in_ring_ to leave 0).
  if (in_ring_ < kLowWater && added_ < count_) {
    for (uint32_t n = 0; n < kGrowBy && added_ < count_; ++n, ++added_) add(static_cast<uint16_t>(added_));
  }
  return Bytes(&slots_[id], memory_ + size_t(id) * buffer_size_, len);
}

void BufferRing::give_back(uint16_t id) noexcept {
  bool was_empty = in_ring_ == 0;
  add(id);
  ++free_;
  if (!was_empty) return;
  // One at a time from the head, each unlinked before its call: a callback may register
  // again (at the tail) or destroy another waiter (which unlinks itself). Those waiting
  // now are called; at most that many calls, so re-registrations cannot loop.
  for (size_t n = waiter_count_; n > 0 && waiters_; --n) {
    BufferWaiter& w = *waiters_;
    unlink(w);
    w.on_buffers_available();
  }
}

void BufferRing::wait_for_buffers(BufferWaiter& w) noexcept {
  if (w.ring_) return;
  w.ring_ = this;
  w.prev_ = waiters_tail_;
  w.next_ = nullptr;
  if (waiters_tail_) waiters_tail_->next_ = &w;
  else waiters_ = &w;
  waiters_tail_ = &w;
  ++waiter_count_;
}

void BufferRing::unlink(BufferWaiter& w) noexcept {
  if (w.prev_) w.prev_->next_ = w.next_;
  else waiters_ = w.next_;
  if (w.next_) w.next_->prev_ = w.prev_;
  else waiters_tail_ = w.prev_;
  w.prev_ = w.next_ = nullptr;
  w.ring_ = nullptr;
  --waiter_count_;
}

void BufferWaiter::stop_waiting() noexcept {
  if (ring_) ring_->unlink(*this);
}

}  // namespace uringrpc::loop
