// Size classes: 16-byte steps up to 1 KiB, 32-byte steps up to 4 KiB (what every connection
// keeps: nghttp2's 2,928-byte session and two 1,024-byte HPACK rings would waste hundreds of
// bytes in 256-byte steps), 256-byte steps up to 16 KiB, each class 8 bytes more than a
// multiple of 16 (small_pool.h: a block fills its malloc chunk); larger requests go to
// operator new. Each class keeps at most ~256 KiB of free blocks per thread, so a burst
// cannot leave a thread holding unbounded memory. The lists are plain thread-local data
// (no guard on the fast path); a separate thread-local object returns them at thread exit.
#include "base/small_pool.h"

#include <cstdint>

#include "uringrpc/frame_pool.h"

namespace uringrpc::base {
#ifndef URINGRPC_POOL_PASSTHROUGH
thread_local constinit pool_detail::FineLists pool_detail::t_fine = pool_detail::empty_fine_lists();

namespace {
using pool_detail::FreeBlock;
using pool_detail::kFineMax;
using pool_detail::t_fine;
constexpr std::size_t kMidStep = 32, kMidMax = 4096 + 8;
constexpr std::size_t kCoarseStep = 256, kCoarseMax = 16384 + 8;
constexpr std::size_t kFineClasses = pool_detail::kFineClasses;
constexpr std::size_t kMidClasses = (kMidMax - kFineMax) / kMidStep;
constexpr std::size_t kClasses = kFineClasses + kMidClasses + (kCoarseMax - kMidMax) / kCoarseStep;
using pool_detail::kCacheBytesPerClass;

constexpr std::size_t class_of(std::size_t n) {
  if (n <= kFineMax) [[likely]] return pool_detail::fine_class(n);  // per-RPC objects
  if (n <= kMidMax) return kFineClasses + (n - kFineMax + kMidStep - 1) / kMidStep - 1;
  return kFineClasses + kMidClasses + (n - kMidMax + kCoarseStep - 1) / kCoarseStep - 1;
}
constexpr std::size_t class_size(std::size_t c) {
  if (c < kFineClasses) return pool_detail::fine_class_size(c);
  if (c < kFineClasses + kMidClasses) return kFineMax + (c - kFineClasses + 1) * kMidStep;
  return kMidMax + (c - kFineClasses - kMidClasses + 1) * kCoarseStep;
}
static_assert(class_size(class_of(1)) == 8 && class_size(class_of(9)) == 24 && class_size(class_of(24)) == 24);
static_assert(class_size(class_of(1024)) == 1032 && class_size(class_of(1032)) == 1032);
static_assert(class_size(class_of(1033)) == 1064 && class_size(class_of(2936)) == 2952);
static_assert(class_size(class_of(4096)) == 4104 && class_size(class_of(4105)) == 4360);
static_assert(class_size(class_of(kCoarseMax)) == kCoarseMax);
static_assert(class_of(kCoarseMax) == kClasses - 1);
// Every class size is 8 more than a multiple of 16 (and holds a free-list link).
constexpr bool all_classes_fill_chunks() {
  for (std::size_t c = 0; c < kClasses; ++c) {
    if (class_size(c) % 16 != 8 || class_of(class_size(c)) != c) return false;
  }
  return true;
}
static_assert(all_classes_fill_chunks());

// The fine classes' lists are t_fine (small_pool.h); these hold the larger classes.
struct Lists {
  FreeBlock* head[kClasses];
  std::uint32_t count[kClasses];
  bool closed;  // the thread is exiting: free straight to operator delete
};
thread_local Lists t_lists{};  // constant-initialised: no guard on access

struct Reaper {
  bool armed = false;
  ~Reaper() {
    t_lists.closed = true;
    for (std::size_t c = 0; c < pool_detail::kFineClasses; ++c) {
      t_fine.room[c] = 0;  // later frees on this thread go to the slow path, then delete
      while (FreeBlock* b = t_fine.head[c]) {
        t_fine.head[c] = b->next;
        ::operator delete(b);
      }
    }
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = t_lists.head[c]) {
        t_lists.head[c] = b->next;
        ::operator delete(b);
      }
      t_lists.count[c] = 0;
    }
  }
};

void arm_reaper() {
  thread_local Reaper reaper;
  reaper.armed = true;
}

}  // namespace
#endif

void* pool_allocate_slow(std::size_t n) {
#ifdef URINGRPC_POOL_PASSTHROUGH
  return ::operator new(n);
#else
  if (n > kCoarseMax) return ::operator new(n);
  std::size_t c = class_of(n == 0 ? 1 : n);
  if (c < pool_detail::kFineClasses) {  // its list is empty (the inline path looked)
    arm_reaper();
    return ::operator new(class_size(c));
  }
  if (FreeBlock* b = t_lists.head[c]) {
    t_lists.head[c] = b->next;
    --t_lists.count[c];
    return b;
  }
  arm_reaper();
  return ::operator new(class_size(c));
#endif
}

void pool_deallocate_slow(void* p, std::size_t n) noexcept {
  if (!p) return;
#ifdef URINGRPC_POOL_PASSTHROUGH
  (void)n;
  ::operator delete(p);
#else
  if (n > kCoarseMax || t_lists.closed) {
    ::operator delete(p);
    return;
  }
  std::size_t c = class_of(n == 0 ? 1 : n);
  if (c < pool_detail::kFineClasses) {  // its list is full (the inline path looked)
    ::operator delete(p);
    return;
  }
  if (t_lists.count[c] * class_size(c) >= kCacheBytesPerClass) {
    ::operator delete(p);
    return;
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = t_lists.head[c];
  t_lists.head[c] = b;
  ++t_lists.count[c];
#endif
}

}  // namespace uringrpc::base

namespace uringrpc::detail {

void* frame_allocate(std::size_t n) { return base::pool_allocate(n); }
void frame_deallocate(void* p, std::size_t n) noexcept { base::pool_deallocate(p, n); }

}  // namespace uringrpc::detail
