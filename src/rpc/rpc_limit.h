// RpcLimit: the one owner of ServerOptions::calls.max_concurrent, the server-wide cap on
// RPCs running at once. ConnectionCalls asks admit() when a request arrives; the Call gives
// its credit back with release() when its handler is gone. Made by the server when the
// option is set, shared by every shard.
//
// Why not one atomic counter: a fetch_add on admit and a fetch_sub on release put two writes
// to one cache line, shared by every shard, on every RPC; with shards on many cores that
// line moves between them on every call. Here the N credits of the limit live in a pool
// and in each shard's spare (a counter on the shard's own cache line): a shard admits from
// its spare, refills it from the pool a batch at a time, and gives a batch back when it
// holds two. The pool is written once per batch, not per RPC.
//
// Exact, not "within a slack": credits are only moved, never made, so at most N calls hold
// one at any instant; and a shard whose spare and the pool are empty takes one from another
// shard's spare before it refuses, so a call is refused only when every credit is held by a
// running call. (A release on another shard racing with the refusal may land either side of
// it, as with a single counter.) The cost of exactness falls only on calls near the limit,
// which touch other shards' lines; below it a shard writes its own line only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace uringrpc::rpc {

class RpcLimit {
 public:
  // batch: credits a shard takes from the pool at once, and gives back when it holds twice
  // as many; 0 picks limit / (8 x shards) within [16, 256]: the larger the batch, the rarer
  // the pool's line is written (about twice per batch of calls), while under a quarter of
  // the limit sits idle in spares (above 16: the floor), which costs steals at the limit,
  // never exactness.
  // limit >= 1; shards >= 1. A limit past 2^47 is taken as 2^47 (no server holds as many).
  RpcLimit(size_t limit, unsigned shards, size_t batch = 0);
  RpcLimit(const RpcLimit&) = delete;
  RpcLimit& operator=(const RpcLimit&) = delete;

  // The verdict for a new call on `shard` (called from that shard's thread only): true
  // takes a credit the call must give back with release(shard); false: refuse the call.
  // Inline: the common case is this shard's own line only.
  [[nodiscard]] bool admit(unsigned shard) noexcept {
    return take_one(spares_[shard].n) || refill(shard);
  }
  // A call admitted on `shard` is over; from that shard's thread.
  void release(unsigned shard) noexcept {
    auto& spare = spares_[shard].n;
    const int64_t v = spare.fetch_add(1, std::memory_order_relaxed) + 1;
    if (v >= 2 * batch_) [[unlikely]] give_back_batch(spare, v);
  }

  size_t limit() const noexcept { return limit_; }
  size_t batch() const noexcept { return static_cast<size_t>(batch_); }
  // Credits held by calls: exact when no shard is admitting or releasing at the moment
  // (tests, the fuzzer, a stopped server); a snapshot otherwise.
  size_t in_use() const noexcept;

 private:
  // The pool: free credits in the low 48 bits, a version in the high 16 that every change
  // bumps, so a refusing shard can tell that credits came back while it looked elsewhere.
  static constexpr unsigned kCountBits = 48;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
  static uint64_t count_of(uint64_t p) noexcept { return p & kCountMask; }
  static uint64_t with_count(uint64_t p, uint64_t n) noexcept {
    return (((p >> kCountBits) + 1) << kCountBits) | n;  // the version wraps: only change matters
  }

  struct alignas(64) Spare {
    std::atomic<int64_t> n{0};  // written by its shard, and taken from by others at the limit
  };

  static bool take_one(std::atomic<int64_t>& spare) noexcept {
    int64_t v = spare.load(std::memory_order_relaxed);
    while (v > 0) {
      if (spare.compare_exchange_weak(v, v - 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  bool refill(unsigned shard) noexcept;
  void give_back_batch(std::atomic<int64_t>& spare, int64_t v) noexcept;

  // Read on every admit: kept off the pool's line, which other shards write.
  const size_t limit_;
  const int64_t batch_;
  const unsigned shards_;
  std::unique_ptr<Spare[]> spares_;
  alignas(64) std::atomic<uint64_t> pool_;  // on a line of its own (the class is 64-aligned)
};

}  // namespace uringrpc::rpc
