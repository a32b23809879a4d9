// The server-wide RPC limit's credits: a pool written once per batch, a spare per shard
// written by its shard, and taking from a sibling's spare only when both are empty.
// Relaxed atomics throughout: the counts order no other memory, and each counter's own
// modification order is all the conservation of credits needs.
#include "rpc/rpc_limit.h"

#include <algorithm>

namespace uringrpc::rpc {
namespace {

int64_t batch_for(size_t limit, unsigned shards, size_t batch) {
  if (batch == 0) batch = std::clamp<size_t>(limit / (8 * std::max(shards, 1u)), 16, 256);
  return static_cast<int64_t>(batch);
}

}  // namespace

RpcLimit::RpcLimit(size_t limit, unsigned shards, size_t batch)
    : limit_(std::min<uint64_t>(limit, uint64_t{1} << 47)),
      batch_(batch_for(limit_, shards, batch)),
      shards_(std::max(shards, 1u)),
      spares_(std::make_unique<Spare[]>(shards_)),
      pool_(limit_) {}

bool RpcLimit::refill(unsigned shard) noexcept {
  // A refusal needs an empty pool that stayed unchanged while the siblings were looked at:
  // otherwise a credit given back to the pool meanwhile could be missed. Each retry means
  // another shard moved a batch, so a few are enough; after them the call is refused.
  for (int attempt = 0; attempt < 8; ++attempt) {
    uint64_t p = pool_.load(std::memory_order_relaxed);
    while (count_of(p) > 0) {
      const uint64_t take = std::min<uint64_t>(count_of(p), static_cast<uint64_t>(batch_));
      if (pool_.compare_exchange_weak(p, with_count(p, count_of(p) - take), std::memory_order_relaxed)) {
        // One for this call, the rest into this shard's spare.
        if (take > 1) spares_[shard].n.fetch_add(static_cast<int64_t>(take - 1), std::memory_order_relaxed);
        return true;
      }
    }
    // At the limit, or credits idle in other shards' spares: take one from a sibling.
    for (unsigned k = 1; k < shards_; ++k) {
      if (take_one(spares_[(shard + k) % shards_].n)) return true;
    }
    if (pool_.load(std::memory_order_relaxed) == p) return false;
  }
  return false;
}

void RpcLimit::give_back_batch(std::atomic<int64_t>& spare, int64_t v) noexcept {
  // Holding two batches: give one back, so idle credits do not pile up on one shard. (A
  // sibling may have taken some meanwhile: then v is below the mark and nothing goes.)
  while (v >= 2 * batch_) {
    if (spare.compare_exchange_weak(v, v - batch_, std::memory_order_relaxed)) {
      uint64_t p = pool_.load(std::memory_order_relaxed);
      while (!pool_.compare_exchange_weak(p, with_count(p, count_of(p) + static_cast<uint64_t>(batch_)),
                                          std::memory_order_relaxed)) {
      }
      return;
    }
  }
}

size_t RpcLimit::in_use() const noexcept {
  uint64_t free = count_of(pool_.load(std::memory_order_relaxed));
  for (unsigned i = 0; i < shards_; ++i) {
    free += static_cast<uint64_t>(std::max<int64_t>(spares_[i].n.load(std::memory_order_relaxed), 0));
  }
  return free >= limit_ ? 0 : limit_ - free;
}

}  // namespace uringrpc::rpc
