// SmallPool: per-thread free lists of small blocks by size class. The objects every RPC
// makes and drops (calls, streams, coroutine frames, nghttp2's stream and frame records,
// queue nodes) reuse memory instead of going to malloc each time; perf showed malloc and
// free at a quarter of a shard's CPU before. Blocks are plain operator-new memory, so one
// freed on another thread just joins that thread's lists. Under AddressSanitizer the pool
// passes straight through, so use-after-free stays visible.
#pragma once

#include <cstddef>
#include <new>

namespace uringrpc::loop {

void* pool_allocate(std::size_t n);
void pool_deallocate(void* p, std::size_t n) noexcept;

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
  static void* operator new(std::size_t n) { return ::uringrpc::loop::pool_allocate(n); }       \
  static void operator delete(void* p, std::size_t n) noexcept {                               \
    ::uringrpc::loop::pool_deallocate(p, n);                                                    \
  }

}  // namespace uringrpc::loop
