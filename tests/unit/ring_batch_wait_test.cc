// Unit tests for the batched wait of src/loop/ring.h (Ring::set_batch_wait): under load a
// sleeping loop lets completions gather up to the batch wait, a full batch or a quiet loop
// wakes at once, and an idle wait still lasts its whole timeout. The batch waits here are
// hundreds of milliseconds so that the bounds hold on a loaded machine. Skipped where the
// kernel has no IORING_FEAT_MIN_TIMEOUT (before 6.12).
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "loop/ring.h"

namespace uringrpc::loop {
namespace {

using Clock = std::chrono::steady_clock;

struct Counter final : Completion {
  int count = 0;
  void on_complete(int, uint32_t) noexcept override { ++count; }
};

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(pipe(fds), 0); }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
};

constexpr unsigned kBatchWaitUs = 400 * 1000;
constexpr unsigned kBatchSize = 32;

// One turn with `n` completions: the ring judges load by its last wake-up.
void turn_with_nops(Ring& ring, Counter& c, int n) {
  for (int i = 0; i < n; ++i) {
    io_uring_sqe* sqe = ring.get_sqe();
    io_uring_prep_nop(sqe);
    Ring::bind(sqe, &c);
  }
  EXPECT_EQ(ring.submit_and_wait(-1), static_cast<unsigned>(n));
}

// Arms one read per pipe, has another thread write to every pipe after a millisecond, then
// waits (up to 5 s) for the first wake-up; returns how long it took and how many reads it ran.
std::pair<Clock::duration, unsigned> wake_on_pipe_writes(Ring& ring, std::vector<Pipe>& pipes) {
  Counter reads;
  std::vector<char> bytes(pipes.size());
  for (size_t i = 0; i < pipes.size(); ++i) {
    io_uring_sqe* sqe = ring.get_sqe();
    io_uring_prep_read(sqe, pipes[i].fds[0], &bytes[i], 1, 0);
    Ring::bind(sqe, &reads);
  }
  const auto start = Clock::now();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (Pipe& p : pipes) EXPECT_EQ(write(p.fds[1], "x", 1), 1);
  });
  unsigned woke_with = ring.submit_and_wait(5000);
  const auto took = Clock::now() - start;
  writer.join();
  while (reads.count < static_cast<int>(pipes.size())) ring.submit_and_wait(1000);
  return {took, woke_with};
}

class RingBatchWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ring_.batch_wait_supported()) GTEST_SKIP() << "kernel without IORING_FEAT_MIN_TIMEOUT";
    ring_.set_batch_wait(kBatchWaitUs, kBatchSize);
  }
  Ring ring_{64};
  Counter nops_;
};

TEST_F(RingBatchWaitTest, UnderLoadACompletionWaitsForTheBatch) {
  turn_with_nops(ring_, nops_, 8);
  std::vector<Pipe> pipes(1);
  auto [took, woke_with] = wake_on_pipe_writes(ring_, pipes);
  EXPECT_EQ(woke_with, 1u);
  EXPECT_GE(took, std::chrono::microseconds(kBatchWaitUs) * 3 / 4);
  EXPECT_LT(took, std::chrono::seconds(4)) << "the batch wait must hand over at its end";
}

TEST_F(RingBatchWaitTest, AFullBatchWakesBeforeTheWaitEnds) {
  turn_with_nops(ring_, nops_, 8);
  std::vector<Pipe> pipes(kBatchSize);
  auto [took, woke_with] = wake_on_pipe_writes(ring_, pipes);
  EXPECT_GE(woke_with, kBatchSize);
  EXPECT_LT(took, std::chrono::microseconds(kBatchWaitUs) / 2);
}

TEST_F(RingBatchWaitTest, AfterAQuietTurnTheNextCompletionWakesAtOnce) {
  turn_with_nops(ring_, nops_, 1);  // a lone caller: no batching, no added latency
  std::vector<Pipe> pipes(1);
  auto [took, woke_with] = wake_on_pipe_writes(ring_, pipes);
  EXPECT_EQ(woke_with, 1u);
  EXPECT_LT(took, std::chrono::microseconds(kBatchWaitUs) / 2);
}

TEST_F(RingBatchWaitTest, AnIdleWaitLastsItsWholeTimeout) {
  ring_.set_batch_wait(1000, kBatchSize);  // ends long before the timeout
  turn_with_nops(ring_, nops_, 8);
  const auto start = Clock::now();
  EXPECT_EQ(ring_.submit_and_wait(300), 0u);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(250));
}

TEST(RingBatchWait, ZeroTurnsItOff) {
  Ring ring(64);
  ring.set_batch_wait(0, kBatchSize);
  Counter nops;
  turn_with_nops(ring, nops, 8);
  std::vector<Pipe> pipes(1);
  auto [took, woke_with] = wake_on_pipe_writes(ring, pipes);
  EXPECT_EQ(woke_with, 1u);
  EXPECT_LT(took, std::chrono::milliseconds(200));
}

}  // namespace
}  // namespace uringrpc::loop
