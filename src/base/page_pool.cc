// One address range reserved once per process (PROT_NONE: no memory is committed until a
// 1 MiB chunk of it is opened for use), carved into blocks of 1..8 pages. Free blocks wait
// on lists per page count: a "dirty" list whose pages are still resident (reuse costs no
// page fault) and a "clean" list of blocks given back to the kernel (zero, not resident).
// A freed block always goes to the dirty list: giving pages back on every free cost a
// connection storm 28 us per connection (madvise, then page faults on reuse). Instead
// page_release_idle(), called from a shard's periodic sweep, gives back the blocks that
// no allocation needed since its previous call, beyond a floor per block size. Sizes and list links live in a side table, never in the blocks,
// so a clean block stays untouched. The lists are shared by all threads under one mutex:
// blocks are taken and given back per connection (two or three each), not per RPC, so
// the lock is off the RPC path, and no thread strands pages when it exits.
#include "base/page_pool.h"

#include <sys/mman.h>

#include <cstring>
#include <iterator>
#include <mutex>

#if defined(__SANITIZE_ADDRESS__)
#define URINGRPC_PAGES_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URINGRPC_PAGES_OFF 1
#endif
#endif

namespace uringrpc::base {
namespace detail {
std::atomic<std::uintptr_t> g_page_region_begin{~std::uintptr_t{0} - kPageRegionBytes + 1};
}

#ifndef URINGRPC_PAGES_OFF
namespace {

// 4 GiB of address space: about 170,000 connections at 6 pages each (frame buffer and
// stream table). Past that, callers fall back to the heap.
constexpr std::size_t kRegionPages = kPageRegionBytes / kPageBytes;
constexpr std::size_t kChunkPages = 256;
// Kept resident per block size once the load stops. Not 256 KiB: that much, cached after
// a wave of connections, showed as 0.25 KiB per connection in idle-1k (64 stream tables).
constexpr std::size_t kDirtyFloorBytes = 64u << 10;

struct PageMeta {
  std::uint32_t next = 0;   // next free block's page index + 1 (0: end of list)
  std::uint8_t pages = 0;   // block length, at the block's first page
};

struct Pool {
  std::mutex mu;
  char* base = nullptr;
  PageMeta* meta = nullptr;
  std::size_t next_page = 0;  // carving point in the open chunk
  std::size_t chunk_end = 0;  // first page past the open chunk
  std::uint32_t dirty[kPagePoolMaxPages + 1] = {};
  std::uint32_t clean[kPagePoolMaxPages + 1] = {};
  std::size_t dirty_count[kPagePoolMaxPages + 1] = {};
  std::size_t dirty_low[kPagePoolMaxPages + 1] = {};  // least dirty_count since the last release

  Pool() {
    void* r = mmap(nullptr, kRegionPages * kPageBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (r == MAP_FAILED) return;
    void* m = mmap(nullptr, kRegionPages * sizeof(PageMeta), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      munmap(r, kRegionPages * kPageBytes);
      return;
    }
    base = static_cast<char*>(r);
    meta = static_cast<PageMeta*>(m);  // anonymous memory is zero: every list empty
    detail::g_page_region_begin.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_relaxed);
  }

  std::size_t index(const void* p) const { return static_cast<std::size_t>(static_cast<const char*>(p) - base) / kPageBytes; }
  char* at(std::size_t i) const { return base + i * kPageBytes; }

  void* pop(std::uint32_t* head, std::size_t n) {
    std::uint32_t i = head[n];
    if (i == 0) return nullptr;
    head[n] = meta[i - 1].next;
    return at(i - 1);
  }
  void push(std::uint32_t* head, std::size_t n, void* p) {
    std::size_t i = index(p);
    meta[i].next = head[n];
    head[n] = static_cast<std::uint32_t>(i + 1);
  }

  // Fresh pages from the open chunk, opening the next one when it runs short (the tail
  // of the old chunk is left unused: never touched, so it costs address space only).
  void* carve(std::size_t n) {
    if (next_page + n > chunk_end) {
      std::size_t start = chunk_end;
      if (start + kChunkPages > kRegionPages) return nullptr;
      if (mprotect(at(start), kChunkPages * kPageBytes, PROT_READ | PROT_WRITE) != 0) return nullptr;
      next_page = start;
      chunk_end = start + kChunkPages;
    }
    void* p = at(next_page);
    next_page += n;
    return p;
  }
};

Pool& pool() {
  static Pool p;
  return p;
}

std::size_t pages_for(std::size_t bytes) { return bytes == 0 ? 1 : (bytes + kPageBytes - 1) / kPageBytes; }

}  // namespace

void* page_allocate(std::size_t bytes, bool* zeroed) noexcept {
  std::size_t n = pages_for(bytes);
  if (n > kPagePoolMaxPages) return nullptr;
  Pool& pl = pool();
  if (!pl.base) return nullptr;
  std::lock_guard<std::mutex> lock(pl.mu);
  void* p = pl.pop(pl.dirty, n);
  if (p) {
    if (--pl.dirty_count[n] < pl.dirty_low[n]) pl.dirty_low[n] = pl.dirty_count[n];
    *zeroed = false;
  } else {
    p = pl.pop(pl.clean, n);
    if (!p) p = pl.carve(n);
    if (!p) return nullptr;
    *zeroed = true;
  }
  pl.meta[pl.index(p)].pages = static_cast<std::uint8_t>(n);
  return p;
}

std::size_t page_block_bytes(const void* p) noexcept {
  Pool& pl = pool();
  return pl.meta[pl.index(p)].pages * kPageBytes;
}

void page_deallocate(void* p) noexcept {
  if (!p) return;
  Pool& pl = pool();
  std::size_t n = pl.meta[pl.index(p)].pages;
  std::lock_guard<std::mutex> lock(pl.mu);
  pl.push(pl.dirty, n, p);
  ++pl.dirty_count[n];
}

bool page_release_idle() noexcept {
  Pool& pl = pool();
  if (!pl.base) return false;
  bool more = false;
  for (std::size_t n = 1; n <= kPagePoolMaxPages; ++n) {
    const std::size_t floor = kDirtyFloorBytes / (n * kPageBytes);
    std::size_t unused;
    {
      std::lock_guard<std::mutex> lock(pl.mu);
      // Blocks below the period's low-water mark were never needed in it.
      unused = pl.dirty_low[n] > floor ? pl.dirty_low[n] - floor : 0;
      pl.dirty_low[n] = pl.dirty_count[n] - unused;
    }
    while (unused > 0) {  // in batches, the system calls outside the lock
      void* batch[64];
      std::size_t taken = 0;
      {
        std::lock_guard<std::mutex> lock(pl.mu);
        while (taken < unused && taken < std::size(batch) && pl.dirty_count[n] > 0) {
          batch[taken++] = pl.pop(pl.dirty, n);
          --pl.dirty_count[n];
        }
      }
      if (taken == 0) break;
      unused -= taken;
      for (std::size_t i = 0; i < taken; ++i) madvise(batch[i], n * kPageBytes, MADV_DONTNEED);
      std::lock_guard<std::mutex> lock(pl.mu);
      for (std::size_t i = 0; i < taken; ++i) pl.push(pl.clean, n, batch[i]);
    }
    std::lock_guard<std::mutex> lock(pl.mu);
    if (pl.dirty_low[n] > pl.dirty_count[n]) pl.dirty_low[n] = pl.dirty_count[n];
    more |= pl.dirty_count[n] > floor;
  }
  return more;
}

std::size_t page_discard(void* p, std::size_t bytes) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uintptr_t first = (a + kPageBytes - 1) & ~(kPageBytes - 1);
  std::uintptr_t last = (a + bytes) & ~(kPageBytes - 1);
  if (last <= first) return 0;
  if (madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return (last - first) / kPageBytes;
}

namespace {
// Compared against with libc's vectorised memcmp, which stops at the first difference (a
// live page usually fails early). The idle trim tests a session's stream-table page after
// every quiet spell, and on a connection making a call every second or two that page is
// empty each time: a word-by-word loop took ~2,600 instructions per call there (perf/README,
// "100,000 connections"). Never written, so it stays the kernel's shared zero page.
alignas(64) const char kZeroPage[kPageBytes] = {};

bool page_is_zero(const char* page) { return std::memcmp(page, kZeroPage, kPageBytes) == 0; }
}  // namespace

std::size_t page_discard_zero_pages(void* p) noexcept {
  char* block = static_cast<char*>(p);
  std::size_t n = page_block_bytes(p) / kPageBytes, dropped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (page_is_zero(block + i * kPageBytes)) dropped += page_discard(block + i * kPageBytes, kPageBytes);
  }
  return dropped;
}

#else  // AddressSanitizer: nothing is served, so nothing else is ever called with a block.

void* page_allocate(std::size_t, bool*) noexcept { return nullptr; }
std::size_t page_block_bytes(const void*) noexcept { return 0; }
void page_deallocate(void*) noexcept {}
bool page_release_idle() noexcept { return false; }
std::size_t page_discard(void*, std::size_t) noexcept { return 0; }
std::size_t page_discard_zero_pages(void*) noexcept { return 0; }

#endif

}  // namespace uringrpc::base
