// The metrics' pieces without a server: the Prometheus text writer (escaping, cumulative
// histogram buckets, _sum and _count), the latency buckets' exact boundaries, and the
// summing of several shards' counters into one text (server/metrics_registry.h).
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "rpc/call_metrics.h"
#include "rpc/method_table.h"
#include "server/metrics_registry.h"
#include "server/prometheus_text.h"
#include "uringrpc/handler.h"

namespace {

using uringrpc::RpcType;
using uringrpc::rpc::kLatencyBuckets;
using uringrpc::rpc::latency_bucket;
using uringrpc::server::Labels;
using uringrpc::server::MetricsRegistry;
using uringrpc::server::PrometheusText;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(PrometheusText, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(uringrpc::server::escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  PrometheusText t;
  t.family("x_total", "counter", "Help with \\ and\nnewline \"quoted\".");
  t.sample("x_total", Labels{{"path", "/a\"b\\c\nd"}, {"k", ""}}, uint64_t{3});
  EXPECT_EQ(t.text(),
            "# HELP x_total Help with \\\\ and\\nnewline \"quoted\".\n"
            "# TYPE x_total counter\n"
            "x_total{path=\"/a\\\"b\\\\c\\nd\",k=\"\"} 3\n");
}

TEST(PrometheusText, SampleWithoutLabelsHasNoBraces) {
  PrometheusText t;
  t.sample("up", Labels{}, uint64_t{1});
  t.sample("ratio", Labels{}, 0.25);
  EXPECT_EQ(t.text(), "up 1\nratio 0.25\n");
}

TEST(PrometheusText, HistogramBucketsAreCumulativeWithSumAndCount) {
  PrometheusText t;
  const double bounds[] = {0.005, 0.01, 2.5};
  const uint64_t counts[] = {2, 0, 3, 1};  // the last: over every bound (+Inf)
  t.histogram("h_seconds", Labels{{"m", "x"}}, bounds, counts, 12.5);
  EXPECT_EQ(t.text(),
            "h_seconds_bucket{m=\"x\",le=\"0.005\"} 2\n"
            "h_seconds_bucket{m=\"x\",le=\"0.01\"} 2\n"
            "h_seconds_bucket{m=\"x\",le=\"2.5\"} 5\n"
            "h_seconds_bucket{m=\"x\",le=\"+Inf\"} 6\n"
            "h_seconds_sum{m=\"x\"} 12.5\n"
            "h_seconds_count{m=\"x\"} 6\n");
}

TEST(LatencyBuckets, ADurationEqualToABoundIsInThatBucket) {
  EXPECT_EQ(latency_bucket(0), 0u);
  EXPECT_EQ(latency_bucket(5'000'000), 0u);  // 5 ms: le="0.005"
  EXPECT_EQ(latency_bucket(5'000'001), 1u);  // just over: le="0.01"
  EXPECT_EQ(latency_bucket(10'000'000), 1u);
  EXPECT_EQ(latency_bucket(10'000'000'000), 10u);  // 10 s: le="10"
  EXPECT_EQ(latency_bucket(10'000'000'001), kLatencyBuckets - 1);  // +Inf
}

TEST(MetricsRender, AFiveMillisecondCallIsCountedInTheFirstBucket) {
  uringrpc::rpc::MethodTable table;
  table.add("/pkg.Svc/Get", uringrpc::MethodHandler{[](uringrpc::ServerContext&) -> uringrpc::Task<void> { co_return; },
                                                    RpcType::kUnary});
  MetricsRegistry registry(uringrpc::server::method_labels(table), 1, false);
  auto& c = registry.shard_metrics()[0].methods[1];
  c.latency[latency_bucket(5'000'000)].add(1);
  c.latency_sum_ns.add(5'000'000);
  const std::string text = registry.text();
  const std::string l = "grpc_type=\"unary\",grpc_service=\"pkg.Svc\",grpc_method=\"Get\"";
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_bucket{" + l + ",le=\"0.005\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_bucket{" + l + ",le=\"10\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_bucket{" + l + ",le=\"+Inf\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_sum{" + l + "} 0.005")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handling_seconds_count{" + l + "} 1")) << text;
}

// Two shards count the same method on their own threads; the text is their sum, and every
// code of every registered method is there, zero or not (go-grpc-prometheus'
// InitializeMetrics), named as Go names codes.
TEST(MetricsRegistry, SumsEveryShardsCounters) {
  uringrpc::rpc::MethodTable table;
  auto noop = [](uringrpc::ServerContext&) -> uringrpc::Task<void> { co_return; };
  table.add("/pkg.Svc/Get", uringrpc::MethodHandler{noop, RpcType::kUnary});
  table.add("/pkg.Svc/Watch", uringrpc::MethodHandler{noop, RpcType::kServerStreaming});
  MetricsRegistry registry(uringrpc::server::method_labels(table), 2, false);
  const size_t get = table.find("/pkg.Svc/Get")->slot;
  auto count = [&](unsigned shard, int calls, uringrpc::StatusCode code) {
    auto* m = &registry.shard_metrics()[shard];
    for (int i = 0; i < calls; ++i) {
      m->methods[get].started.add(1);
      m->methods[get].msg_received.add(1);
      m->methods[get].bytes_received.add(10);
      m->methods[get].handled[static_cast<size_t>(code)].add(1);
    }
    m->connections_accepted.add(3);
    m->connections_closed.add(1);
  };
  std::thread a(count, 0, 5, uringrpc::StatusCode::OK);
  std::thread b(count, 1, 4, uringrpc::StatusCode::NOT_FOUND);
  a.join();
  b.join();
  const auto totals = registry.totals();
  EXPECT_EQ(totals.methods[get].started, 9u);
  EXPECT_EQ(totals.connections_accepted, 6u);
  EXPECT_EQ(totals.connections_open, 4u);

  const std::string text = registry.text();
  const std::string l = "grpc_type=\"unary\",grpc_service=\"pkg.Svc\",grpc_method=\"Get\"";
  EXPECT_TRUE(has_line(text, "grpc_server_started_total{" + l + "} 9")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + l + ",grpc_code=\"OK\"} 5")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + l + ",grpc_code=\"NotFound\"} 4")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_handled_total{" + l + ",grpc_code=\"Canceled\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "grpc_server_msg_received_total{" + l + "} 9")) << text;
  EXPECT_TRUE(has_line(text, "uringrpc_server_received_bytes_total{" + l + "} 90")) << text;
  EXPECT_TRUE(has_line(text,
                       "grpc_server_started_total{grpc_type=\"server_stream\",grpc_service=\"pkg.Svc\","
                       "grpc_method=\"Watch\"} 0"))
      << text;
  EXPECT_TRUE(has_line(text, "uringrpc_server_connections 4")) << text;
  EXPECT_TRUE(has_line(text, "uringrpc_server_connections_accepted_total 6")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE grpc_server_handling_seconds histogram")) << text;
  // No fallback handler: no series for unknown methods.
  EXPECT_EQ(text.find("grpc_method=\"unknown\""), std::string::npos) << text;
}

TEST(MetricsRegistry, UnknownMethodsShareOneSeriesWhenAFallbackServesThem) {
  uringrpc::rpc::MethodTable table;
  auto noop = [](uringrpc::ServerContext&) -> uringrpc::Task<void> { co_return; };
  table.set_fallback(uringrpc::MethodHandler{noop, RpcType::kBidiStreaming});
  MetricsRegistry registry(uringrpc::server::method_labels(table), 1, true);
  registry.shard_metrics()[0].methods[uringrpc::rpc::MethodTable::kUnknownSlot].started.add(2);
  EXPECT_TRUE(has_line(registry.text(),
                       "grpc_server_started_total{grpc_type=\"bidi_stream\",grpc_service=\"unknown\","
                       "grpc_method=\"unknown\"} 2"))
      << registry.text();
}

}  // namespace

namespace {

// A scrape reads while the shard writes: every value read is whole and never goes back
// (run under TSan by `make tsan-run`, this is also the proof that the reads are race-free).
TEST(MetricsRegistry, AReaderOnAnotherThreadSeesCountersOnlyGrow) {
  uringrpc::rpc::MethodTable table;
  table.add("/pkg.Svc/Get", uringrpc::MethodHandler{[](uringrpc::ServerContext&) -> uringrpc::Task<void> { co_return; },
                                                    RpcType::kUnary});
  MetricsRegistry registry(uringrpc::server::method_labels(table), 1, false);
  constexpr uint64_t kCalls = 200'000;
  std::thread shard([&] {
    uringrpc::rpc::CallMeter meter;
    for (uint64_t i = 0; i < kCalls; ++i) {
      meter = {};
      meter.start(&registry.shard_metrics()[0], 1);
      meter.received_message();
      meter.end(uringrpc::StatusCode::OK);
    }
  });
  uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    const auto t = registry.totals();
    EXPECT_GE(t.methods[1].started, last);
    EXPECT_LE(t.methods[1].started, kCalls);
    last = t.methods[1].started;
    (void)registry.text();
  }
  shard.join();
  const auto t = registry.totals();
  EXPECT_EQ(t.methods[1].started, kCalls);
  EXPECT_EQ(t.methods[1].handled[0], kCalls);
  uint64_t in_buckets = 0;
  for (uint64_t c : t.methods[1].latency) in_buckets += c;
  EXPECT_EQ(in_buckets, kCalls);
}

}  // namespace
