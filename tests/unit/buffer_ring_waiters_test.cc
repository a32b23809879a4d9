// loop::BufferRing's list of receivers waiting for buffers (BufferWaiter): called once when
// the ring refills, never after the waiter is gone, and safe when the ring goes first.
// Uses a real io_uring (the ring must be registered) but no socket.
#include <gtest/gtest.h>
#include <liburing.h>

#include <functional>
#include <memory>
#include <vector>

#include "loop/buffer_ring.h"

namespace uringrpc::loop {
namespace {

struct Waiter final : BufferWaiter {
  std::function<void()> on_call;
  int calls = 0;
  void on_buffers_available() noexcept override {
    ++calls;
    if (on_call) on_call();
  }
};

class BufferRingWaiters : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(io_uring_queue_init(8, &uring_, 0), 0);
    ring_ = std::make_unique<BufferRing>(&uring_, 4096, 4);
    // Take every buffer, as receives would: the ring is empty now.
    for (uint16_t id = 0; id < 4; ++id) held_.push_back(ring_->take(id, 1));
    ASSERT_EQ(ring_->free_buffers(), 0u);
  }
  void TearDown() override {
    held_.clear();
    ring_.reset();
    io_uring_queue_exit(&uring_);
  }
  io_uring uring_{};
  std::unique_ptr<BufferRing> ring_;
  std::vector<Bytes> held_;
};

TEST_F(BufferRingWaiters, EachWaiterIsCalledOnceWhenTheRingRefills) {
  Waiter a, b;
  ring_->wait_for_buffers(a);
  ring_->wait_for_buffers(a);  // registering twice is one entry
  ring_->wait_for_buffers(b);
  held_.pop_back();  // a buffer returns: empty → non-empty
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  EXPECT_FALSE(a.waiting());
  held_.pop_back();  // not from empty: nobody is waiting anyway
  EXPECT_EQ(a.calls, 1);
}

TEST_F(BufferRingWaiters, AWaiterDestroyedWhileWaitingIsNeverCalled) {
  Waiter kept;
  {
    Waiter dying;
    ring_->wait_for_buffers(dying);
    ring_->wait_for_buffers(kept);
  }
  held_.pop_back();
  EXPECT_EQ(kept.calls, 1);
}

TEST_F(BufferRingWaiters, AWaiterThatWaitsAgainFromItsCallIsCalledAtTheNextRefill) {
  Waiter w;
  w.on_call = [&] { ring_->wait_for_buffers(w); };
  ring_->wait_for_buffers(w);
  held_.pop_back();
  EXPECT_EQ(w.calls, 1) << "a re-registration must not loop within one refill";
  EXPECT_TRUE(w.waiting());
  w.on_call = nullptr;
  held_.clear();        // three more come back, but the ring was not empty
  EXPECT_EQ(w.calls, 1);
}

TEST_F(BufferRingWaiters, TheRingGoingFirstDetachesItsWaiters) {
  Waiter w;
  ring_->wait_for_buffers(w);
  held_.clear();
  w.on_call = nullptr;
  ring_->wait_for_buffers(w);
  ring_.reset();
  EXPECT_FALSE(w.waiting());  // and ~Waiter touches no freed ring
}

}  // namespace
}  // namespace uringrpc::loop
