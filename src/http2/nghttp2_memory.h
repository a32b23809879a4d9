// SessionMemory: nghttp2's allocator for one Session, and what gives an idle session's
// memory back. Small blocks (stream records, frames, header copies: several per request)
// come from the shard's block pool; blocks over a page (the 16 KiB frame buffer, the
// stream table) come page-aligned from base/page_pool, where untouched pages are never
// resident and fresh ones need no memset. Once a session has been quiet for a sweep
// period, its frame buffer's pages and its all-zero pages are dropped (see trim()).
// Owned by http2::Session; nghttp2 gets it as mem_user_data.
#pragma once

#include <nghttp2/nghttp2.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "loop/timer_wheel.h"

namespace uringrpc::http2 {

class SessionMemory {
 public:
  // idle(owner): the sweep's call once nghttp2 has gone a period without allocating. The
  // owner calls trim() if the session is quiet (nothing queued or half-sent, no stream
  // open: the frame buffer's content is dead), drops idle memory of its own, and returns
  // true; false asks again next period. wheel null: never called.
  using IdleFn = bool (*)(void* owner);
  SessionMemory(loop::TimerWheel* wheel, IdleFn idle, void* owner);
  ~SessionMemory();
  SessionMemory(const SessionMemory&) = delete;
  SessionMemory& operator=(const SessionMemory&) = delete;

  // nghttp2_session_server_new3 with this allocator. The one buffer nghttp2 grows with
  // realloc while it builds a session is its outbound frame buffer (aob.framebufs' first
  // chunk, kept for the session's life): that block is marked as the frame buffer.
  int new_server_session(nghttp2_session** out, const nghttp2_session_callbacks* cbs, void* user,
                         const nghttp2_option* opt);

  // Drops the frame buffer's pages and every all-zero page of this session's page blocks.
  // Only while the session is quiet (see IdleFn) and outside any nghttp2 call: nghttp2
  // packs each frame into the frame buffer from its start before it reads any of it, and
  // with no item in flight (nghttp2_session_want_write() == 0) nothing still to be read is
  // there, so pages that read back as zeros change nothing. Returns the pages dropped.
  std::size_t trim() noexcept;

  // Sessions trimmed by the sweep since the process started (tests and curiosity). Each
  // shard adds its round's trims once, after the round: one write of this shared line per
  // period, not one per session.
  static std::uint64_t sweep_trims() { return s_sweep_trims.load(std::memory_order_relaxed); }
  // How long a session must go without nghttp2 allocating before the sweep trims it:
  // between one and two periods.
  static constexpr std::uint64_t kSweepPeriodMs = 500;

 private:
  friend struct SessionSweep;
  static constexpr std::size_t kTrackedBlocks = 4;

  static void* ng_malloc(std::size_t size, void* self);
  static void ng_free(void* ptr, void* self);
  static void* ng_calloc(std::size_t nmemb, std::size_t size, void* self);
  static void* ng_realloc(void* ptr, std::size_t size, void* self);
  void* page_block(std::size_t size, bool frame_buffer, bool* zeroed);
  // Stops tracking p; returns whether it was the frame buffer.
  bool forget(void* p);
  // The allocator's slow path: first allocation since the last sweep (joins or stays on
  // the sweep's list), or a block for the page pool.
  [[gnu::noinline]] void* malloc_slow(std::size_t size, bool zero);
  void join_sweep();
  void leave_sweep();

  // Every Session keeps one of these, so it stays small: nghttp2 copies the nghttp2_mem
  // it is given, which therefore lives on new_server_session's stack.
  loop::TimerWheel* wheel_;
  IdleFn idle_;
  void* owner_;
  void* blocks_[kTrackedBlocks] = {};  // page blocks trim() may drop pages of
  std::uint8_t frame_buffers_ = 0;     // bit i: blocks_[i] is the frame buffer
  bool constructing_ = false;         // inside new_server_session
  // kBusy: allocated since the last sweep (the allocator's fast path tests only this);
  // kListed: on the sweep's list, quiet so far; kUnlisted: trimmed or never seen.
  enum Activity : std::uint8_t { kUnlisted, kListed, kBusy };
  Activity activity_ = kUnlisted;
  SessionMemory* prev_ = nullptr;     // the shard thread's sweep list
  SessionMemory* next_ = nullptr;
  static std::atomic<std::uint64_t> s_sweep_trims;
};

}  // namespace uringrpc::http2
