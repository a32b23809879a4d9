// base/small_pool: size classes 8 bytes over a multiple of 16 (a block fills its malloc
// chunk), the boundaries between them, and blocks coming back for any size of their class.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "base/small_pool.h"

namespace uringrpc::base {
namespace {

std::vector<std::size_t> sizes() {
  std::vector<std::size_t> out;
  for (std::size_t n = 1; n <= 1100; ++n) out.push_back(n);
  for (std::size_t n : {2928u, 2936u, 2952u, 2953u, 4088u, 4096u, 4104u, 4105u, 4360u, 4361u, 8000u, 16384u,
                        16392u, 16393u, 20000u, 70000u}) {
    out.push_back(n);
  }
  return out;
}

TEST(SmallPool, EveryBlockHoldsWhatWasAskedAndComesBackForItsSize) {
  for (std::size_t n : sizes()) {
    void* p = pool_allocate(n);
    std::memset(p, 0xab, n);  // ASan and valgrind would tell
    pool_deallocate(p, n);
#if !defined(URINGRPC_POOL_PASSTHROUGH)
    if (n <= 16392) {  // the largest class; larger blocks go straight to operator new
      void* q = pool_allocate(n);
      EXPECT_EQ(q, p) << n;  // LIFO lists
      pool_deallocate(q, n);
    }
#endif
  }
}

TEST(SmallPool, ClassesEndEightBytesPastAMultipleOfSixteen) {
#if defined(URINGRPC_POOL_PASSTHROUGH)
  GTEST_SKIP() << "sanitizer build: the pool passes straight through to operator new";
#else
  // (lo, hi]: the sizes of one class. A block freed as hi serves lo + 1, and not hi + 1.
  struct Range {
    std::size_t lo, hi;
  };
  for (Range r : {Range{0, 8}, Range{8, 24}, Range{24, 40}, Range{72, 88}, Range{1016, 1032}, Range{1032, 1064},
                  Range{2920, 2952}, Range{4072, 4104}, Range{4104, 4360}, Range{16136, 16392}}) {
    SCOPED_TRACE(r.hi);
    void* p = pool_allocate(r.hi);
    std::memset(p, 0xcd, r.hi);
    pool_deallocate(p, r.hi);
    void* next_class = pool_allocate(r.hi + 1);
    EXPECT_NE(next_class, p);
    void* same_class = pool_allocate(r.lo + 1);
    EXPECT_EQ(same_class, p);
    pool_deallocate(same_class, r.lo + 1);
    pool_deallocate(next_class, r.hi + 1);
  }
#endif
}

}  // namespace
}  // namespace uringrpc::base
