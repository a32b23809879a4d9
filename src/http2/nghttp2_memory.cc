// nghttp2 frees without a size, so small blocks carry theirs in an 8-byte header; page blocks
// need none (base/page_pool keeps sizes aside, and page_owned() tells the two kinds apart).
// The header is 8 bytes, not 16: nghttp2's blocks then start 8 bytes into a pool block (its
// structures hold nothing wider than pointers and 64-bit integers, which need 8), and with
// the pool's classes of 16k + 8 bytes a block of nghttp2's usual sizes (multiples of 8 or
// 16) plus the header fills a class with no byte to spare. A 16-byte header cost ~0.4 KiB
// of an idle connection's ~8.8 (perf/README.md, "100,000 connections").
// The sweep: one list per shard thread of the sessions that allocated since they were
// last trimmed, walked by one timer every kSweepPeriodMs while the list is not empty.
// A session joins on its first allocation after a trim (a flag test per allocation; no
// syscall or timer work per RPC); one that allocated nothing for a whole period and is
// quiet is trimmed and leaves.
#include "http2/nghttp2_memory.h"

#include <algorithm>
#include <cstring>

#include "base/page_pool.h"
#include "base/small_pool.h"

namespace uringrpc::http2 {

std::atomic<std::uint64_t> SessionMemory::s_sweep_trims{0};

namespace {

struct BlockHeader {
  std::size_t size;
};
static_assert(sizeof(BlockHeader) == 8);
// Larger blocks would cross a page boundary with their header: they go to the page pool.
constexpr std::size_t kPageThreshold = base::kPageBytes - sizeof(BlockHeader);

void* header_malloc(std::size_t size) {
  auto* h = static_cast<BlockHeader*>(base::pool_allocate(sizeof(BlockHeader) + size));
  h->size = size;
  return h + 1;
}
std::size_t header_size(void* ptr) { return (static_cast<BlockHeader*>(ptr) - 1)->size; }
void header_free(void* ptr) {
  auto* h = static_cast<BlockHeader*>(ptr) - 1;
  base::pool_deallocate(h, sizeof(BlockHeader) + h->size);
}

}  // namespace

struct SessionSweep {
  SessionMemory* head = nullptr;
  loop::Timer timer;
  loop::TimerWheel* wheel = nullptr;  // the one the timer is armed on, while armed

  SessionSweep() { timer.set_callback(&SessionSweep::fired, this); }
  // Thread exit: sessions still listed are left unlisted, so whoever frees them later
  // (another thread, after the shard joined) does not touch this list.
  ~SessionSweep() {
    while (SessionMemory* m = head) {
      head = m->next_;
      m->activity_ = SessionMemory::kUnlisted;
      m->prev_ = m->next_ = nullptr;
    }
  }

  static void fired(void* arg) {
    auto& sw = *static_cast<SessionSweep*>(arg);
    std::uint64_t trimmed = 0;
    for (SessionMemory* m = sw.head; m;) {
      SessionMemory* next = m->next_;
      if (m->activity_ == SessionMemory::kBusy) {
        m->activity_ = SessionMemory::kListed;  // busy in the last period: look again next time
      } else if (m->idle_(m->owner_)) {
        ++trimmed;
        m->leave_sweep();
      }
      m = next;
    }
    // One add per round, not per session: the counter is process-wide, so every shard's
    // sweep writes its line, and a connection calling every second or two is trimmed after
    // each call (perf/README.md, "Nothing shared between shards").
    if (trimmed) s_trims_add(trimmed);
    // Freed page blocks wait resident for reuse; those a whole period did not need go back.
    bool spare_pages = base::page_release_idle();
    if (sw.head || spare_pages) sw.wheel->arm(sw.timer, sw.wheel->now_ms() + SessionMemory::kSweepPeriodMs);
  }
  static void s_trims_add(std::uint64_t n) { SessionMemory::s_sweep_trims.fetch_add(n, std::memory_order_relaxed); }
};

namespace {
thread_local SessionSweep t_sweep;
}

SessionMemory::SessionMemory(loop::TimerWheel* wheel, IdleFn idle, void* owner)
    : wheel_(wheel),
      idle_(idle),
      owner_(owner) {}

SessionMemory::~SessionMemory() {
  if (activity_ != kUnlisted && wheel_) leave_sweep();
}

int SessionMemory::new_server_session(nghttp2_session** out, const nghttp2_session_callbacks* cbs, void* user,
                                      const nghttp2_option* opt) {
  nghttp2_mem mem{this, &SessionMemory::ng_malloc, &SessionMemory::ng_free, &SessionMemory::ng_calloc,
                  &SessionMemory::ng_realloc};
  constructing_ = true;
  int rv = nghttp2_session_server_new3(out, cbs, user, opt, &mem);
  constructing_ = false;
  return rv;
}

void SessionMemory::join_sweep() {
  SessionSweep& sw = t_sweep;
  if (!sw.timer.armed()) {
    sw.wheel = wheel_;
    wheel_->arm(sw.timer, wheel_->now_ms() + kSweepPeriodMs);
  }
  prev_ = nullptr;
  next_ = sw.head;
  if (sw.head) sw.head->prev_ = this;
  sw.head = this;
}

void SessionMemory::leave_sweep() {
  SessionSweep& sw = t_sweep;
  if (prev_) prev_->next_ = next_;
  else sw.head = next_;
  if (next_) next_->prev_ = prev_;
  prev_ = next_ = nullptr;
  activity_ = kUnlisted;
  // The timer stays armed when the list empties: its next round gives back the page
  // blocks of sessions that are gone, and stops once none are spare.
}

std::size_t SessionMemory::trim() noexcept {
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < kTrackedBlocks; ++i) {
    void* p = blocks_[i];
    if (!p) continue;
    dropped += (frame_buffers_ >> i) & 1 ? base::page_discard(p, base::page_block_bytes(p))
                                         : base::page_discard_zero_pages(p);
  }
  return dropped;
}

void* SessionMemory::page_block(std::size_t size, bool frame_buffer, bool* zeroed) {
  void* p = base::page_allocate(size, zeroed);
  if (!p) return nullptr;
  // Untracked blocks (more than kTrackedBlocks at once: a burst of huge headers) are only
  // never trimmed.
  for (std::size_t i = 0; i < kTrackedBlocks; ++i) {
    if (!blocks_[i]) {
      blocks_[i] = p;
      if (frame_buffer) frame_buffers_ |= static_cast<std::uint8_t>(1u << i);
      break;
    }
  }
  return p;
}

bool SessionMemory::forget(void* p) {
  for (std::size_t i = 0; i < kTrackedBlocks; ++i) {
    if (blocks_[i] == p) {
      blocks_[i] = nullptr;
      bool was = (frame_buffers_ >> i) & 1;
      frame_buffers_ &= static_cast<std::uint8_t>(~(1u << i));
      return was;
    }
  }
  return false;
}

void* SessionMemory::malloc_slow(std::size_t size, bool zero) {
  if (activity_ == kUnlisted && wheel_) join_sweep();
  activity_ = kBusy;  // sessions without a wheel stay "busy": they are never swept
  if (zero && size > kPageThreshold) {
    bool zeroed;
    if (void* p = page_block(size, false, &zeroed)) {
      if (zero && !zeroed) std::memset(p, 0, size);  // fresh or discarded pages are zero already
      return p;
    }
  }
  void* p = header_malloc(size);
  if (zero) std::memset(p, 0, size);
  return p;
}

// Plain mallocs over a page are rare (a grown HPACK table, a huge header value) and not
// worth a size test on every call: they stay on the heap. The blocks worth pages come
// through calloc (the stream table) and realloc (the frame buffer).
void* SessionMemory::ng_malloc(std::size_t size, void* self) {
  auto* m = static_cast<SessionMemory*>(self);
  if (m->activity_ != kBusy) [[unlikely]] return m->malloc_slow(size, false);
  return header_malloc(size);
}

void SessionMemory::ng_free(void* ptr, void* self) {
  if (!ptr) return;
  if (base::page_owned(ptr)) {
    static_cast<SessionMemory*>(self)->forget(ptr);
    base::page_deallocate(ptr);
    return;
  }
  header_free(ptr);
}

void* SessionMemory::ng_calloc(std::size_t nmemb, std::size_t size, void* self) {
  auto* m = static_cast<SessionMemory*>(self);
  std::size_t n = nmemb * size;
  if (m->activity_ != kBusy || n > kPageThreshold) [[unlikely]] return m->malloc_slow(n, true);
  void* p = header_malloc(n);
  std::memset(p, 0, n);
  return p;
}

void* SessionMemory::ng_realloc(void* ptr, std::size_t size, void* self) {
  auto& m = *static_cast<SessionMemory*>(self);
  bool old_paged = ptr && base::page_owned(ptr);
  bool frame_buffer = (!ptr && m.constructing_);
  std::size_t old = 0;
  if (old_paged) {
    old = base::page_block_bytes(ptr);
    if (size > kPageThreshold && size <= old) return ptr;  // still fits its pages
    frame_buffer = m.forget(ptr);  // a moved frame buffer stays one
  } else if (ptr) {
    old = header_size(ptr);
  }
  if (m.activity_ == kUnlisted && m.wheel_) m.join_sweep();
  m.activity_ = kBusy;
  void* p = nullptr;
  if (size > kPageThreshold) {
    bool zeroed;
    p = m.page_block(size, frame_buffer, &zeroed);
  }
  if (!p) p = header_malloc(size);
  if (ptr) {
    std::memcpy(p, ptr, std::min(old, size));
    ng_free(ptr, self);
  }
  return p;
}

}  // namespace uringrpc::http2
