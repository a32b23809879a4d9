// Unit tests for loop::BufferRing (src/loop/buffer_ring.h) against a real io_uring: receives
// land in ring buffers without a copy, an empty ring fails a receive with -ENOBUFS (the
// backpressure signal), and releasing a buffer refills it and wakes a waiting receiver once.
#include "loop/buffer_ring.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "loop/ring.h"

namespace uringrpc::loop {
namespace {

struct LastCompletion final : Completion {
  int res = 0;
  uint32_t flags = 0;
  int count = 0;
  void on_complete(int r, uint32_t f) noexcept override {
    res = r;
    flags = f;
    ++count;
  }
};

// A connected socket pair: the test writes on one end and receives on the other.
struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~SocketPair() {
    close(fds[0]);
    close(fds[1]);
  }
};

class BufferRingTest : public ::testing::Test {
 protected:
  struct Received {
    int res;
    Bytes bytes;  // empty unless the receive got a buffer
  };

  // Writes `payload` and runs one receive that lets the kernel pick a buffer of the ring.
  Received receive(BufferRing& buffers, const std::string& payload) {
    EXPECT_EQ(write(pair_.fds[0], payload.data(), payload.size()), static_cast<ssize_t>(payload.size()));
    LastCompletion c;
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_recv(sqe, pair_.fds[1], nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BufferRing::kGroupId;
    Ring::bind(sqe, &c);
    while (c.count == 0) ring_.submit_and_wait(-1);
    if (c.res < 0) {
      // Leave the socket empty for the next receive.
      std::vector<char> drain(payload.size());
      EXPECT_EQ(read(pair_.fds[1], drain.data(), drain.size()), static_cast<ssize_t>(drain.size()));
      return {c.res, {}};
    }
    EXPECT_TRUE(c.flags & IORING_CQE_F_BUFFER);
    uint16_t id = static_cast<uint16_t>(c.flags >> IORING_CQE_BUFFER_SHIFT);
    return {c.res, buffers.take(id, static_cast<uint32_t>(c.res))};
  }

  Ring ring_{64};
  SocketPair pair_;
};

std::string text(const Bytes& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

TEST_F(BufferRingTest, RefusesABufferCountThatIsNotAPowerOfTwoUpTo32768) {
  EXPECT_THROW(BufferRing(ring_.raw(), 64, 0), std::invalid_argument);
  EXPECT_THROW(BufferRing(ring_.raw(), 64, 3), std::invalid_argument);
  EXPECT_THROW(BufferRing(ring_.raw(), 64, 65536), std::invalid_argument);
}

TEST_F(BufferRingTest, ReceivedBytesAreAViewIntoTheRingNotACopy) {
  BufferRing buffers(ring_.raw(), 64, 4);
  Received r = receive(buffers, "hello");
  ASSERT_EQ(r.res, 5);
  EXPECT_EQ(text(r.bytes), "hello");
  EXPECT_TRUE(buffers.contains(r.bytes.data()));
  EXPECT_EQ(buffers.free_buffers(), 3u);
}

TEST_F(BufferRingTest, EmptyRingFailsTheReceiveWithEnobufs) {
  BufferRing buffers(ring_.raw(), 64, 2);
  Received a = receive(buffers, "a");
  Received b = receive(buffers, "b");
  ASSERT_EQ(a.res, 1);
  ASSERT_EQ(b.res, 1);
  EXPECT_EQ(buffers.free_buffers(), 0u);
  EXPECT_EQ(receive(buffers, "c").res, -ENOBUFS);
}

struct CountingWaiter final : BufferWaiter {
  int calls = 0;
  void on_buffers_available() noexcept override { ++calls; }
};

TEST_F(BufferRingTest, ReleasingTheLastViewRefillsAnEmptyRingAndWakesTheWaiterOnce) {
  BufferRing buffers(ring_.raw(), 64, 2);
  Received a = receive(buffers, "a");
  Received b = receive(buffers, "b");
  ASSERT_EQ(receive(buffers, "c").res, -ENOBUFS);
  CountingWaiter waiter;  // a receiver that got -ENOBUFS waits for the refill
  buffers.wait_for_buffers(waiter);
  int& refills = waiter.calls;

  Bytes slice = a.bytes.slice(0, 1);
  a.bytes = Bytes();
  EXPECT_EQ(refills, 0) << "a slice still holds the buffer";
  EXPECT_EQ(buffers.free_buffers(), 0u);
  slice = Bytes();
  EXPECT_EQ(refills, 1);
  EXPECT_EQ(buffers.free_buffers(), 1u);
  b.bytes = Bytes();
  EXPECT_EQ(refills, 1) << "the waiter was called once; nobody waits any more";
  EXPECT_EQ(buffers.free_buffers(), 2u);

  Received again = receive(buffers, "again");
  ASSERT_EQ(again.res, 5);
  EXPECT_EQ(text(again.bytes), "again");
}

TEST_F(BufferRingTest, StartsWith64BuffersAndGrowsBy64WhenFewerThan16Remain) {
  BufferRing buffers(ring_.raw(), 16, 256);
  EXPECT_EQ(buffers.free_buffers(), 64u);
  std::vector<Bytes> held;
  for (int i = 0; i < 48; ++i) held.push_back(receive(buffers, "x").bytes);
  EXPECT_EQ(buffers.free_buffers(), 16u) << "16 left is not yet below the low water";
  held.push_back(receive(buffers, "x").bytes);
  EXPECT_EQ(buffers.free_buffers(), 15u + 64u);
}

TEST_F(BufferRingTest, RunningLowBelowAQuarterOfTheBuffersFree) {
  BufferRing buffers(ring_.raw(), 16, 8);
  std::vector<Bytes> held;
  for (int i = 0; i < 6; ++i) held.push_back(receive(buffers, "x").bytes);
  EXPECT_FALSE(buffers.running_low()) << "2 of 8 free is a quarter";
  held.push_back(receive(buffers, "x").bytes);
  EXPECT_TRUE(buffers.running_low());
  held.pop_back();
  EXPECT_FALSE(buffers.running_low());
}

}  // namespace
}  // namespace uringrpc::loop
