// SmallPool: per-thread free lists of small blocks by size class. The objects every RPC
// makes and drops (calls, streams, coroutine frames, nghttp2's stream and frame records,
// queue nodes) reuse memory instead of going to malloc each time; perf showed malloc and
// free at a quarter of a shard's CPU before. Blocks are plain operator-new memory, so one
// freed on another thread just joins that thread's lists. Under AddressSanitizer the pool
// passes straight through, so use-after-free stays visible.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define URINGRPC_POOL_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URINGRPC_POOL_PASSTHROUGH 1
#endif
#endif

namespace uringrpc::base {

// The blocks of up to 1 KiB (16-byte classes) are every per-RPC object, a few dozen pops
// and pushes per call: that path is inline here, so it costs a handful of instructions
// and no call. Everything else (a list that is empty or full, larger blocks, thread exit)
// is small_pool.cc's.
// Class sizes are 8 more than a multiple of 16 (8, 24, 40, ... 1032): malloc's chunks are
// multiples of 16 with an 8-byte size word, so a block of 16k + 8 bytes fills its chunk,
// where one of 16k bytes left 8 unused bytes behind it (and a 16k + 8-byte object took the
// next class up): 8-16 bytes on each of the ~30 blocks an idle connection keeps.
namespace pool_detail {
constexpr std::size_t kFineStep = 16, kFineMax = 1024 + 8, kFineClasses = kFineMax / kFineStep + 1;
constexpr std::size_t fine_class(std::size_t n) { return (n + 7) / kFineStep; }  // n in 1..kFineMax
constexpr std::size_t fine_class_size(std::size_t c) { return c * kFineStep + 8; }
constexpr std::size_t kCacheBytesPerClass = 256u << 10;  // per class and thread
struct FreeBlock {
  FreeBlock* next;
};
struct FineLists {
  FreeBlock* head[kFineClasses];
  std::uint32_t room[kFineClasses];  // blocks the list may still take; 0 at thread exit
};
constexpr FineLists empty_fine_lists() {
  FineLists l{};
  for (std::size_t c = 0; c < kFineClasses; ++c) {
    l.room[c] = static_cast<std::uint32_t>(kCacheBytesPerClass / fine_class_size(c));
  }
  return l;
}
extern thread_local constinit FineLists t_fine;
}  // namespace pool_detail

void* pool_allocate_slow(std::size_t n);
void pool_deallocate_slow(void* p, std::size_t n) noexcept;

inline void* pool_allocate(std::size_t n) {
#ifndef URINGRPC_POOL_PASSTHROUGH
  using namespace pool_detail;
  if (n - 1 < kFineMax) [[likely]] {  // 1..1032 (n = 0 wraps around to the slow path)
    std::size_t c = fine_class(n);
    if (FreeBlock* b = t_fine.head[c]) [[likely]] {
      t_fine.head[c] = b->next;
      ++t_fine.room[c];
      return b;
    }
  }
#endif
  return pool_allocate_slow(n);
}

inline void pool_deallocate(void* p, std::size_t n) noexcept {
#ifndef URINGRPC_POOL_PASSTHROUGH
  using namespace pool_detail;
  if (n - 1 < kFineMax && p) [[likely]] {
    std::size_t c = fine_class(n);
    if (t_fine.room[c] > 0) [[likely]] {
      auto* b = static_cast<FreeBlock*>(p);
      b->next = t_fine.head[c];
      t_fine.head[c] = b;
      --t_fine.room[c];
      return;
    }
  }
#endif
  pool_deallocate_slow(p, n);
}

// For containers on the per-RPC path (the call's message queues).
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(pool_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool_deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

// Class-level operator new/delete for per-RPC objects: `URINGRPC_POOLED` in the class body.
#define URINGRPC_POOLED                                                                          \
  static void* operator new(std::size_t n) { return ::uringrpc::base::pool_allocate(n); }       \
  static void operator delete(void* p, std::size_t n) noexcept {                               \
    ::uringrpc::base::pool_deallocate(p, n);                                                    \
  }

}  // namespace uringrpc::base
