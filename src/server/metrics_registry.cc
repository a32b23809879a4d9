// Summing the shards' counters and naming them as go-grpc-prometheus does, so that
// dashboards and alerts written for Go and grpc-ecosystem servers work unchanged.
#include "server/metrics_registry.h"

#include <algorithm>
#include <numeric>

#include "server/prometheus_text.h"

namespace uringrpc::server {
namespace {

// grpc_server_handling_seconds' bounds, in seconds, as rendered in le="...".
constexpr double kLatencyBoundsSeconds[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
static_assert(std::size(kLatencyBoundsSeconds) == std::size(rpc::kLatencyBoundsNs));

constexpr std::string_view kCodeNames[rpc::kStatusCodes] = {
    "OK",       "Canceled",           "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"};

}  // namespace

std::string_view grpc_code_label(size_t code) { return code < rpc::kStatusCodes ? kCodeNames[code] : "Unknown"; }

std::string_view grpc_type_label(RpcType type) {
  switch (type) {
    case RpcType::kUnary: return "unary";
    case RpcType::kClientStreaming: return "client_stream";
    case RpcType::kServerStreaming: return "server_stream";
    case RpcType::kBidiStreaming: return "bidi_stream";
  }
  return "bidi_stream";
}

std::vector<MethodLabels> method_labels(const rpc::MethodTable& table) {
  std::vector<MethodLabels> labels(table.slot_count());
  const rpc::MethodTable::Entry* fallback = table.fallback();
  labels[rpc::MethodTable::kUnknownSlot] = {"unknown", "unknown",
                                            fallback ? fallback->handler.type : RpcType::kBidiStreaming};
  table.for_each([&](const rpc::MethodTable::Entry& e) {
    // MethodTable::add checked the form "/service/method".
    const size_t slash = e.path.find('/', 1);
    labels[e.slot] = {e.path.substr(1, slash - 1), e.path.substr(slash + 1), e.handler.type};
  });
  return labels;
}

MetricsRegistry::MetricsRegistry(std::vector<MethodLabels> labels, unsigned shards, bool with_unknown)
    : labels_(std::move(labels)),
      shard_count_(shards),
      with_unknown_(with_unknown),
      shards_(std::make_unique<rpc::ShardMetrics[]>(shards)) {
  for (unsigned i = 0; i < shards; ++i) shards_[i].allocate(labels_.size());
}

MetricsTotals MetricsRegistry::totals() const {
  MetricsTotals t;
  t.methods.resize(labels_.size());
  uint64_t closed = 0;
  for (unsigned s = 0; s < shard_count_; ++s) {
    const rpc::ShardMetrics& shard = shards_[s];
    for (size_t m = 0; m < labels_.size(); ++m) {
      const rpc::MethodCounters& c = shard.methods[m];
      MethodTotals& o = t.methods[m];
      o.started += c.started.get();
      for (size_t i = 0; i < rpc::kStatusCodes; ++i) o.handled[i] += c.handled[i].get();
      o.msg_received += c.msg_received.get();
      o.msg_sent += c.msg_sent.get();
      o.bytes_received += c.bytes_received.get();
      o.bytes_sent += c.bytes_sent.get();
      for (size_t i = 0; i < rpc::kLatencyBuckets; ++i) o.latency[i] += c.latency[i].get();
      o.latency_sum_ns += c.latency_sum_ns.get();
    }
    // Closed before accepted: a connection is counted accepted before closed, so the
    // gauge is not made negative by one that closes between the two reads.
    closed += shard.connections_closed.get();
    t.connections_accepted += shard.connections_accepted.get();
    t.connections_refused += shard.connections_refused.get();
  }
  t.connections_open = t.connections_accepted - std::min(closed, t.connections_accepted);
  return t;
}

std::string render_metrics(const std::vector<MethodLabels>& labels, const MetricsTotals& totals, bool with_unknown) {
  std::vector<size_t> order;
  for (size_t slot = 0; slot < labels.size(); ++slot) {
    if (slot != rpc::MethodTable::kUnknownSlot || with_unknown) order.push_back(slot);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(labels[a].service, labels[a].method) < std::tie(labels[b].service, labels[b].method);
  });
  auto base = [&](size_t slot) {
    return Labels{{"grpc_type", grpc_type_label(labels[slot].type)},
                  {"grpc_service", labels[slot].service},
                  {"grpc_method", labels[slot].method}};
  };
  PrometheusText out;
  auto counter = [&](const char* name, const char* help, uint64_t MethodTotals::*field) {
    out.family(name, "counter", help);
    for (size_t slot : order) out.sample(name, base(slot), totals.methods[slot].*field);
  };
  counter("grpc_server_started_total", "Total number of RPCs started on the server.", &MethodTotals::started);
  out.family("grpc_server_handled_total", "counter",
             "Total number of RPCs completed on the server, regardless of success or failure.");
  for (size_t slot : order) {
    for (size_t code = 0; code < rpc::kStatusCodes; ++code) {
      Labels l = base(slot);
      l.emplace_back("grpc_code", grpc_code_label(code));
      out.sample("grpc_server_handled_total", l, totals.methods[slot].handled[code]);
    }
  }
  counter("grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.",
          &MethodTotals::msg_received);
  counter("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.",
          &MethodTotals::msg_sent);
  out.family("grpc_server_handling_seconds", "histogram",
             "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.");
  for (size_t slot : order) {
    const MethodTotals& m = totals.methods[slot];
    out.histogram("grpc_server_handling_seconds", base(slot), kLatencyBoundsSeconds, m.latency,
                  static_cast<double>(m.latency_sum_ns) / 1e9);
  }
  counter("uringrpc_server_received_bytes_total",
          "Request DATA bytes received: gRPC-framed messages as sent, before decompression.",
          &MethodTotals::bytes_received);
  counter("uringrpc_server_sent_bytes_total",
          "Response DATA bytes sent: gRPC-framed messages as sent, after compression.", &MethodTotals::bytes_sent);
  out.family("uringrpc_server_connections", "gauge", "Client connections open.");
  out.sample("uringrpc_server_connections", {}, totals.connections_open);
  out.family("uringrpc_server_connections_accepted_total", "counter", "Client connections accepted.");
  out.sample("uringrpc_server_connections_accepted_total", {}, totals.connections_accepted);
  out.family("uringrpc_server_connections_refused_total", "counter",
             "Client connections closed at accept: the shard's direct descriptor table was full.");
  out.sample("uringrpc_server_connections_refused_total", {}, totals.connections_refused);
  return out.text();
}

}  // namespace uringrpc::server
