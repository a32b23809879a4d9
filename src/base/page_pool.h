// PagePool: page-aligned blocks of whole pages for the few large, long-lived buffers each
// connection keeps (nghttp2's 16 KiB frame buffer, its stream table). From malloc such a
// block shares its edge pages with neighbours and is fully resident once touched anywhere;
// here a page nobody wrote is never resident, a fresh block is known to be zero (calloc
// needs no memset), and a block's pages can be handed back (discard) while its owner idles.
// Called by http2/nghttp2_memory.cc. Under AddressSanitizer nothing is served here (the
// caller falls back to its heap path), so use-after-free stays visible.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace uringrpc::base {

inline constexpr std::size_t kPageBytes = 4096;
// Larger requests are not served (page_allocate returns null).
inline constexpr std::size_t kPagePoolMaxPages = 8;

// Address space reserved for blocks (once per process, on first use).
inline constexpr std::size_t kPageRegionBytes = std::size_t{4} << 30;

namespace detail {
// Until the region exists this is the top of the address space, where no user pointer
// lies, so page_owned() is false for everything.
extern std::atomic<std::uintptr_t> g_page_region_begin;
}

// Whether p came from page_allocate: one load, a subtraction and a compare, cheap enough
// for every free of nghttp2's (several per RPC).
inline bool page_owned(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p) - detail::g_page_region_begin.load(std::memory_order_relaxed) <
         kPageRegionBytes;
}

// A block of ceil(bytes / page) pages, or null (too large, region used up, sanitizer
// build). *zeroed tells whether every byte is known to be zero (fresh or discarded pages).
void* page_allocate(std::size_t bytes, bool* zeroed) noexcept;
// Usable size of a block from page_allocate (whole pages).
std::size_t page_block_bytes(const void* p) noexcept;
// The block waits, still resident, for the next page_allocate of its size.
void page_deallocate(void* p) noexcept;
// Gives back (MADV_DONTNEED) the free blocks that no allocation needed since the previous
// call, beyond 64 KiB per block size. For a periodic timer (http2's session sweep);
// returns whether resident free blocks remain above that floor, i.e. whether to call again.
bool page_release_idle() noexcept;
// Drops the whole pages inside [p, p + bytes) from memory (MADV_DONTNEED): they read back
// as zeros, so only for bytes whose content no longer matters. Returns pages dropped.
std::size_t page_discard(void* p, std::size_t bytes) noexcept;
// Drops the pages of a block that are all zero: their content does not change, so this is
// safe whatever the block holds, as long as no other thread writes it meanwhile.
std::size_t page_discard_zero_pages(void* p) noexcept;

}  // namespace uringrpc::base
