// BufferRing: a shard's provided-buffer ring for multishot receives. The kernel picks a
// free buffer for each receive, so no memory sits pinned under an idle connection. A
// received buffer is handed upward as Bytes views (zero-copy); it returns to the ring
// when the last view is released. Buffers enter the ring only as they are needed (see
// kInitialInRing): the kernel takes buffers in ring order, so a ring holding all of them
// would cycle through every buffer and leave each one's first page resident, whatever the
// load; a small working set keeps reusing the same few.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <vector>

#include "uringrpc/bytes.h"

namespace uringrpc::loop {

class BufferRing;

// Something waiting for receive buffers (a connection whose multishot receive ended with
// -ENOBUFS). Registered with BufferRing::wait_for_buffers; called once when the ring
// refills. Unlinks itself when destroyed, so a waiter that dies while waiting never
// dangles in the ring's list; the ring detaches those still waiting when it goes first.
class BufferWaiter {
 public:
  virtual void on_buffers_available() noexcept = 0;
  bool waiting() const noexcept { return ring_ != nullptr; }
  void stop_waiting() noexcept;

 protected:
  BufferWaiter() = default;
  ~BufferWaiter() { stop_waiting(); }
  BufferWaiter(const BufferWaiter&) = delete;
  BufferWaiter& operator=(const BufferWaiter&) = delete;

 private:
  friend class BufferRing;
  BufferRing* ring_ = nullptr;  // non-null while in that ring's list
  BufferWaiter* prev_ = nullptr;
  BufferWaiter* next_ = nullptr;
};

class BufferRing {
 public:
  static constexpr uint16_t kGroupId = 1;

  // Throws std::runtime_error if the ring cannot be mapped or registered.
  BufferRing(io_uring* ring, uint32_t buffer_size, uint32_t buffer_count);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // Wraps the first `len` bytes of buffer `id` (as reported by a CQE) in a Bytes that
  // owns the buffer until it and all its slices are gone.
  Bytes take(uint16_t id, uint32_t len);
  uint32_t buffer_size() const { return buffer_size_; }
  // Whether p points into this ring's buffers (tests use it to prove zero-copy receives).
  bool contains(const uint8_t* p) const { return p >= memory_ && p < memory_ + memory_bytes_; }
  // Buffers the kernel can pick now (not counting those it took whose completions have
  // not been read yet): 0 only once every buffer has entered the ring.
  uint32_t free_buffers() const { return in_ring_; }
  // Under a quarter of the buffers left: holders of received bytes that will wait should
  // copy them out rather than keep a buffer (every connection of the shard needs some).
  bool running_low() const { return free_ < count_ / 4; }
  // Queues w (if not queued already) to be called once, the next time the ring goes
  // from empty to non-empty, so a receive that ended with -ENOBUFS can be re-armed.
  // Intrusive: no allocation, and at most one entry per waiter.
  void wait_for_buffers(BufferWaiter& w) noexcept;

 private:
  class Slot final : public BufferOwner {
   public:
    BufferRing* ring = nullptr;
    uint16_t id = 0;

   protected:
    void release() noexcept override { ring->give_back(id); }
  };
  friend class BufferWaiter;
  void give_back(uint16_t id) noexcept;
  void unlink(BufferWaiter& w) noexcept;
  void add(uint16_t id) noexcept;
  // Enough for the completions one loop turn reads (each holds a buffer only until its
  // bytes are handed on); the ring grows by kGrowBy whenever fewer than kLowWater remain.
  static constexpr uint32_t kInitialInRing = 64, kLowWater = 16, kGrowBy = 64;

  io_uring* ring_;
  io_uring_buf_ring* br_ = nullptr;
  uint8_t* memory_ = nullptr;
  size_t ring_bytes_ = 0;
  size_t memory_bytes_ = 0;
  uint32_t buffer_size_;
  uint32_t count_;
  uint32_t free_;         // not held by anyone: in the ring or never added
  uint32_t in_ring_ = 0;  // given to the kernel, by our count
  uint32_t added_ = 0;    // buffers [0, added_) have entered the ring
  std::vector<Slot> slots_;
  BufferWaiter* waiters_ = nullptr;  // FIFO: head here, new waiters at waiters_tail_
  BufferWaiter* waiters_tail_ = nullptr;
  size_t waiter_count_ = 0;
};

}  // namespace uringrpc::loop
