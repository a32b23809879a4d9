// MemoryBudget: one shard's share of ServerOptions::max_buffered_bytes, and what the
// shard's calls buffer right now (request bytes not yet taken by handlers, response bytes
// not yet taken by the network). Each shard touches only its own, so it is a plain counter.
#pragma once

#include <cstddef>

namespace uringrpc::rpc {

struct alignas(64) MemoryBudget {
  size_t limit = 0;  // 0: no budget
  size_t used = 0;

  // New calls are refused while this holds; calls already running go on (each is bounded
  // by its flow-control window and write watermark).
  bool exhausted() const { return limit != 0 && used >= limit; }
};

}  // namespace uringrpc::rpc
