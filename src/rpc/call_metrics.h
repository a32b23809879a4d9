// Per-shard RPC metrics: the counters one shard keeps for each method, and CallMeter, the
// few hooks a Call fires into them (start, messages and bytes each way, end). The server
// layer (server/metrics_registry.h) allocates one ShardMetrics per shard and sums them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/probes.h"
#include "uringrpc/status.h"

namespace uringrpc::rpc {

// A counter written by one thread (its shard) and read by any (a scrape).
// Why relaxed atomics rather than plain integers plus a snapshot posted to every shard: a
// plain integer read by another thread while its shard writes is a data race (undefined
// behaviour, and TSan says so), while posting to each shard makes a scrape wait for every
// loop to turn and fails once the shards have stopped. A relaxed load and store by the one
// writer is what a plain `++` compiles to on x86 and arm64 (no lock prefix, no fence: the
// read-modify-write is not atomic, which needs no atomicity with a single writer), and a
// reader gets each counter whole. Counters are not read as one consistent set; each only
// grows, which is all Prometheus needs.
class Counter {
 public:
  void add(uint64_t n) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// grpc_server_handling_seconds' bucket bounds (go-grpc-prometheus' defaults), in ns; a
// duration equal to a bound is in that bucket (Prometheus' le).
inline constexpr uint64_t kLatencyBoundsNs[] = {
    5'000'000,   10'000'000,  25'000'000,    50'000'000,    100'000'000,   250'000'000,
    500'000'000, 1000'000'000, 2500'000'000, 5000'000'000, 10000'000'000};
inline constexpr size_t kLatencyBuckets = std::size(kLatencyBoundsNs) + 1;  // + the +Inf bucket
inline constexpr size_t kStatusCodes = 17;                                    // OK .. UNAUTHENTICATED

// The bucket of a duration: the first bound it does not exceed, or the +Inf bucket.
inline size_t latency_bucket(uint64_t ns) noexcept {
  size_t i = 0;
  while (i < std::size(kLatencyBoundsNs) && ns > kLatencyBoundsNs[i]) ++i;
  return i;
}

// One method's counters on one shard. Cache-line aligned so that two shards' arrays never
// share a line (each shard allocates its own).
struct alignas(64) MethodCounters {
  Counter started;
  Counter handled[kStatusCodes];
  Counter msg_received;
  Counter msg_sent;
  Counter bytes_received;  // DATA payload: the gRPC-framed messages as sent (compressed)
  Counter bytes_sent;
  Counter latency[kLatencyBuckets];  // per bucket, not cumulative
  Counter latency_sum_ns;
};

// What one shard counts. methods[slot], slot as in MethodTable::Entry::slot.
struct alignas(64) ShardMetrics {
  // Before the shard starts.
  void allocate(size_t slots) {
    methods = std::make_unique<MethodCounters[]>(slots);
    slot_count = slots;
  }
  std::unique_ptr<MethodCounters[]> methods;
  size_t slot_count = 0;
  Counter connections_accepted;
  Counter connections_closed;
  // Closed at accept because the shard's direct descriptor table was full.
  Counter connections_refused;
};

// A Call's view of its method's counters on its shard. Null (metrics off): every hook is
// one predictable branch, nothing else.
class CallMeter {
 public:
  void start(ShardMetrics* shard, size_t slot) noexcept {
    if (!shard) return;
    c_ = &shard->methods[slot];
    c_->started.add(1);
    start_ns_ = base::probes::now_ns();
  }
  void received_bytes(size_t n) noexcept {
    if (c_) c_->bytes_received.add(n);
  }
  void received_message() noexcept {
    if (c_) c_->msg_received.add(1);
  }
  void sent_message() noexcept {
    if (c_) c_->msg_sent.add(1);
  }
  void sent_bytes(size_t n) noexcept {
    if (c_) c_->bytes_sent.add(n);
  }
  // Once, when the call's final status is decided.
  void end(StatusCode code) noexcept {
    if (!c_) return;
    const uint64_t ns = base::probes::now_ns() - start_ns_;
    const auto i = static_cast<size_t>(code);
    c_->handled[i < kStatusCodes ? i : static_cast<size_t>(StatusCode::UNKNOWN)].add(1);
    c_->latency[latency_bucket(ns)].add(1);
    c_->latency_sum_ns.add(ns);
  }

 private:
  MethodCounters* c_ = nullptr;
  uint64_t start_ns_ = 0;
};

}  // namespace uringrpc::rpc
