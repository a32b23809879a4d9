// RpcLimit, the server-wide calls.max_concurrent: walked across its exact boundary on one
// shard and on several, with credits idle in other shards' spares, and under threads racing.
#include "rpc/rpc_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace uringrpc::rpc {
namespace {

TEST(RpcLimit, OneShardAdmitsTheNthCallAndRefusesTheNextOne) {
  for (size_t n : {size_t{1}, size_t{5}, size_t{16}, size_t{17}, size_t{100}}) {
    RpcLimit limit(n, 1);
    for (size_t i = 0; i < n; ++i) ASSERT_TRUE(limit.admit(0)) << "call " << i + 1 << " of " << n;
    EXPECT_FALSE(limit.admit(0)) << "call " << n + 1 << " admitted with a limit of " << n;
    EXPECT_EQ(limit.in_use(), n);
    limit.release(0);
    EXPECT_TRUE(limit.admit(0)) << "a released credit was not reused";
    EXPECT_FALSE(limit.admit(0));
    for (size_t i = 0; i < n; ++i) limit.release(0);
    EXPECT_EQ(limit.in_use(), 0u);
  }
}

TEST(RpcLimit, TheBoundaryHoldsWhicheverShardTheCallsComeOn) {
  constexpr size_t kLimit = 40;
  RpcLimit limit(kLimit, 2);
  // Shard 0 takes a batch and uses part of it: the rest sits in its spare.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limit.admit(0));
  // Shard 1 gets the remaining 30: the pool's, then what shard 0 holds unused.
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(limit.admit(1)) << "call " << 11 + i << " refused below the limit";
  EXPECT_EQ(limit.in_use(), kLimit);
  EXPECT_FALSE(limit.admit(1));
  EXPECT_FALSE(limit.admit(0));
  // One ends on shard 1: the next call, on shard 0, gets its credit.
  limit.release(1);
  EXPECT_TRUE(limit.admit(0));
  EXPECT_FALSE(limit.admit(1));
  EXPECT_FALSE(limit.admit(0));
}

TEST(RpcLimit, CreditsIdleOnOneShardDoNotRefuseCallsOnAnother) {
  constexpr size_t kLimit = 100;
  RpcLimit limit(kLimit, 4);
  // A burst on shard 2 that ends: its spare keeps up to two batches.
  for (int i = 0; i < 31; ++i) ASSERT_TRUE(limit.admit(2));
  for (int i = 0; i < 31; ++i) limit.release(2);
  EXPECT_EQ(limit.in_use(), 0u);
  for (size_t i = 0; i < kLimit; ++i) ASSERT_TRUE(limit.admit(3)) << "call " << i + 1;
  EXPECT_FALSE(limit.admit(3));
  EXPECT_FALSE(limit.admit(2));
  EXPECT_FALSE(limit.admit(0));
}

TEST(RpcLimit, ALimitOfOneAmongManyShardsAdmitsExactlyOne) {
  RpcLimit limit(1, 64);
  EXPECT_TRUE(limit.admit(63));
  for (unsigned s = 0; s < 64; ++s) EXPECT_FALSE(limit.admit(s)) << "shard " << s;
  limit.release(63);
  EXPECT_TRUE(limit.admit(7));
  EXPECT_FALSE(limit.admit(63));
}

TEST(RpcLimit, ReleasesGiveBatchesBackSoEveryShardCanReachTheLimit) {
  constexpr size_t kLimit = 64;
  RpcLimit limit(kLimit, 2, 4);
  for (int round = 0; round < 3; ++round) {
    const unsigned s = round % 2;
    for (size_t i = 0; i < kLimit; ++i) ASSERT_TRUE(limit.admit(s)) << "round " << round << " call " << i + 1;
    EXPECT_FALSE(limit.admit(s));
    EXPECT_FALSE(limit.admit(1 - s));
    for (size_t i = 0; i < kLimit; ++i) limit.release(s);
    EXPECT_EQ(limit.in_use(), 0u);
  }
}

TEST(RpcLimit, TheBatchGrowsWithTheLimitPerShardWithin16And256) {
  EXPECT_EQ(RpcLimit(1, 1).batch(), 16u);
  EXPECT_EQ(RpcLimit(100, 4).batch(), 16u);
  EXPECT_EQ(RpcLimit(4096, 4).batch(), 128u);
  EXPECT_EQ(RpcLimit(1'000'000, 2).batch(), 256u);
  EXPECT_EQ(RpcLimit(1'000'000, 2, 4).batch(), 4u);
}

TEST(RpcLimit, ARemoteLimitIsClampedNotOverflowed) {
  RpcLimit limit(SIZE_MAX, 2);
  EXPECT_EQ(limit.limit(), size_t{1} << 47);
  EXPECT_TRUE(limit.admit(0));
  EXPECT_TRUE(limit.admit(1));
  EXPECT_EQ(limit.in_use(), 2u);
}

// Threads as shards, each admitting and ending calls at random: never more than the limit
// at once (counted outside the class), and every credit back at the end.
TEST(RpcLimit, RacingShardsNeverRunMoreThanTheLimit) {
  constexpr size_t kLimit = 24;
  constexpr unsigned kShards = 4;
  RpcLimit limit(kLimit, kShards, 4);
  std::atomic<int> running{0}, most{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (unsigned s = 0; s < kShards; ++s) {
    threads.emplace_back([&, s] {
      std::minstd_rand rng(s + 1);
      int held = 0;
      for (int i = 0; i < 200'000; ++i) {
        if (held == 0 || (held < 30 && rng() % 2 == 0)) {  // 30 > the limit: one thread alone reaches it
          if (limit.admit(s)) {
            ++held;
            int now = running.fetch_add(1) + 1;
            int m = most.load();
            while (now > m && !most.compare_exchange_weak(m, now)) {
            }
          } else {
            refused.fetch_add(1);
          }
        } else {
          running.fetch_sub(1);
          --held;
          limit.release(s);
        }
      }
      while (held-- > 0) {
        running.fetch_sub(1);
        limit.release(s);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), static_cast<int>(kLimit));
  EXPECT_GT(refused.load(), 0) << "the load never reached the limit: the test tested nothing";
  EXPECT_EQ(limit.in_use(), 0u);
  // And the whole limit is still there, for one shard alone.
  for (size_t i = 0; i < kLimit; ++i) ASSERT_TRUE(limit.admit(1));
  EXPECT_FALSE(limit.admit(1));
}

}  // namespace
}  // namespace uringrpc::rpc
