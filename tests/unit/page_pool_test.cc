// base/page_pool: page-aligned blocks whose untouched pages cost nothing, freed blocks kept
// resident for reuse, and the decay that gives back what a whole period did not need.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "base/page_pool.h"

namespace uringrpc::base {
namespace {

bool pool_active() {
  bool zeroed;
  void* p = page_allocate(1, &zeroed);
  if (p) page_deallocate(p);
  return p != nullptr;
}

TEST(PagePool, BlocksArePageAlignedWholePagesAndRecognised) {
  if (!pool_active()) GTEST_SKIP() << "sanitizer build: the pool serves nothing";
  bool zeroed;
  void* p = page_allocate(16394, &zeroed);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kPageBytes, 0u);
  EXPECT_EQ(page_block_bytes(p), 5 * kPageBytes);
  EXPECT_TRUE(page_owned(p));
  EXPECT_TRUE(page_owned(static_cast<char*>(p) + 5 * kPageBytes - 1));
  int on_stack = 0;
  std::vector<char> on_heap(64);
  EXPECT_FALSE(page_owned(&on_stack));
  EXPECT_FALSE(page_owned(on_heap.data()));
  EXPECT_FALSE(page_owned(nullptr));
  EXPECT_EQ(page_allocate((kPagePoolMaxPages + 1) * kPageBytes, &zeroed), nullptr);
  page_deallocate(p);
}

TEST(PagePool, DiscardedPagesReadBackAsZeroAndZeroPagesAreFound) {
  if (!pool_active()) GTEST_SKIP() << "sanitizer build: the pool serves nothing";
  bool zeroed;
  auto* p = static_cast<char*>(page_allocate(3 * kPageBytes, &zeroed));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x5a, 3 * kPageBytes);
  std::memset(p + kPageBytes, 0, kPageBytes);  // the middle page is all zero
  EXPECT_EQ(page_discard_zero_pages(p), 1u);
  EXPECT_EQ(p[0], 0x5a);
  EXPECT_EQ(p[2 * kPageBytes], 0x5a);
  EXPECT_EQ(page_discard(p, 3 * kPageBytes), 3u);
  for (std::size_t i = 0; i < 3 * kPageBytes; i += 512) EXPECT_EQ(p[i], 0) << i;
  page_deallocate(p);
}

// One non-zero byte anywhere, the first or the last included, keeps a page.
TEST(PagePool, APageWithOneNonZeroByteAnywhereIsNotDiscarded) {
  if (!pool_active()) GTEST_SKIP() << "sanitizer build: the pool serves nothing";
  bool zeroed;
  auto* p = static_cast<char*>(page_allocate(kPageBytes, &zeroed));
  ASSERT_NE(p, nullptr);
  for (std::size_t at : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64}, kPageBytes / 2,
                         kPageBytes - 9, kPageBytes - 1}) {
    std::memset(p, 0, kPageBytes);
    p[at] = 1;
    EXPECT_EQ(page_discard_zero_pages(p), 0u) << "byte " << at;
    EXPECT_EQ(p[at], 1) << "byte " << at;
  }
  std::memset(p, 0, kPageBytes);
  EXPECT_EQ(page_discard_zero_pages(p), 1u);
  page_deallocate(p);
}

TEST(PagePool, FreedBlocksStayForReuseUntilAWholePeriodDidNotNeedThem) {
  if (!pool_active()) GTEST_SKIP() << "sanitizer build: the pool serves nothing";
  constexpr std::size_t kBlocks = 300;  // well over the 64 one-page blocks kept resident
  std::vector<void*> blocks;
  bool zeroed;
  for (std::size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(page_allocate(kPageBytes, &zeroed));
    ASSERT_NE(blocks.back(), nullptr);
    std::memset(blocks.back(), 1, kPageBytes);
  }
  for (void* b : blocks) page_deallocate(b);
  // The first call closes the period in which the blocks were in use: they stay, and are
  // reported as spare; the second finds them unneeded for a whole period and gives back
  // all but the floor.
  EXPECT_TRUE(page_release_idle());
  EXPECT_FALSE(page_release_idle()) << "the floor should be all that is left";
  std::size_t fresh = 0;
  blocks.clear();
  for (std::size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(page_allocate(kPageBytes, &zeroed));
    if (zeroed) {
      ++fresh;
      EXPECT_EQ(static_cast<char*>(blocks.back())[100], 0);
    }
  }
  EXPECT_GE(fresh, kBlocks - 64) << "released blocks come back zeroed (no memset needed)";
  for (void* b : blocks) page_deallocate(b);
}

}  // namespace
}  // namespace uringrpc::base
