// MetricsRegistry: the server's RPC and connection metrics (ServerOptions::metrics). It
// owns one rpc::ShardMetrics per shard, sized at start() from the method table so that no
// call allocates, and sums them for a reader on any thread: Server::metrics_text() and
// the admin endpoint (admin_http.h) render totals() in Prometheus' text format.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rpc/call_metrics.h"
#include "rpc/method_table.h"
#include "uringrpc/handler.h"

namespace uringrpc::server {

// What a method slot's series are labelled with.
struct MethodLabels {
  std::string service;  // grpc_service: "pkg.Service"
  std::string method;   // grpc_method: "Method"
  RpcType type = RpcType::kBidiStreaming;
};

// One method's counters summed over the shards.
struct MethodTotals {
  uint64_t started = 0;
  uint64_t handled[rpc::kStatusCodes] = {};
  uint64_t msg_received = 0;
  uint64_t msg_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t latency[rpc::kLatencyBuckets] = {};
  uint64_t latency_sum_ns = 0;
};

struct MetricsTotals {
  std::vector<MethodTotals> methods;  // by slot
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;
  uint64_t connections_refused = 0;
};

// The labels of every slot of `table`. Slot 0 (MethodTable::kUnknownSlot) stands for every
// path no method was added for, served by the fallback handler: one series set labelled
// grpc_service="unknown", grpc_method="unknown", however many paths clients make up.
std::vector<MethodLabels> method_labels(const rpc::MethodTable& table);

// "grpc.testing.TestService" ... as go-grpc-prometheus spells codes: "OK", "Canceled", "NotFound".
std::string_view grpc_code_label(size_t code);
std::string_view grpc_type_label(RpcType type);

// The exposition text of `totals`. Methods sorted by service and method; the unknown slot
// only when `with_unknown` (a fallback handler exists). Every registered method shows
// every code of grpc_server_handled_total, 0 or not, as go-grpc-prometheus'
// InitializeMetrics does, so rate() and dashboards see series before the first error.
std::string render_metrics(const std::vector<MethodLabels>& labels, const MetricsTotals& totals, bool with_unknown);

class MetricsRegistry {
 public:
  MetricsRegistry(std::vector<MethodLabels> labels, unsigned shards, bool with_unknown);
  // shard_metrics()[i] is shard i's, written only by that shard.
  rpc::ShardMetrics* shard_metrics() { return shards_.get(); }
  // Any thread, while the shards run or after they stopped.
  MetricsTotals totals() const;
  std::string text() const { return render_metrics(labels_, totals(), with_unknown_); }

 private:
  std::vector<MethodLabels> labels_;
  unsigned shard_count_;
  bool with_unknown_;
  std::unique_ptr<rpc::ShardMetrics[]> shards_;
};

}  // namespace uringrpc::server
