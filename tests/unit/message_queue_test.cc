// Unit tests for MessageQueue, the FIFO a call keeps its messages in: order across growth
// and wrap-around, and that every message it held is destroyed exactly once.
#include "rpc/message_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace uringrpc::rpc {
namespace {

TEST(MessageQueue, StartsEmptyAndKeepsOrderAcrossGrowthAndWrapAround) {
  MessageQueue<std::string> q;
  EXPECT_TRUE(q.empty());
  int next_in = 0, next_out = 0;
  // Interleave pushes and pops so the ring wraps before and after each doubling.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < round % 7 + 1; ++i) q.push_back("message " + std::to_string(next_in++));
    for (int i = 0; i < round % 5 && !q.empty(); ++i) {
      EXPECT_EQ(q.front(), "message " + std::to_string(next_out++));
      q.pop_front();
    }
    EXPECT_EQ(q.size(), static_cast<size_t>(next_in - next_out));
  }
  while (!q.empty()) {
    EXPECT_EQ(q.front(), "message " + std::to_string(next_out++));
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
}

TEST(MessageQueue, DestroysWhatItHoldsOnce) {
  auto alive = std::make_shared<int>(0);
  {
    MessageQueue<std::shared_ptr<int>> q;
    for (int i = 0; i < 37; ++i) q.push_back(std::shared_ptr<int>(alive));
    EXPECT_EQ(alive.use_count(), 38);
    for (int i = 0; i < 10; ++i) q.pop_front();
    EXPECT_EQ(alive.use_count(), 28);
  }  // the rest go with the queue
  EXPECT_EQ(alive.use_count(), 1);
}

}  // namespace
}  // namespace uringrpc::rpc
