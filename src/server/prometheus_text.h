// PrometheusText: writes Prometheus' text exposition format 0.0.4 (HELP and TYPE lines,
// escaped label values, cumulative histogram buckets with _sum and _count). Used by
// MetricsRegistry (metrics_registry.h) to render a scrape; knows nothing of gRPC.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace uringrpc::server {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// A label value as the format wants it: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view v);
// A HELP text: backslash and newline escaped (quotes stay).
std::string escape_help(std::string_view v);
// Shortest text that reads back as the same double ("0.005", "1", "2.5"); "+Inf", "-Inf", "NaN".
std::string format_value(double v);

class PrometheusText {
 public:
  // "# HELP name help" and "# TYPE name type" (counter, gauge, histogram); once per family,
  // before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, uint64_t value);
  void sample(std::string_view name, const Labels& labels, double value);
  // One histogram's series: name_bucket{...,le="b"} for each bound (cumulative) and
  // le="+Inf", then name_sum and name_count. `counts` has one count per bound plus the
  // +Inf bucket's, each counting only its own bucket.
  void histogram(std::string_view name, const Labels& labels, std::span<const double> bounds,
                 std::span<const uint64_t> counts, double sum);
  const std::string& text() const { return out_; }

 private:
  void series(std::string_view name, std::string_view suffix, const Labels& labels,
              std::string_view extra_name = {}, std::string_view extra_value = {});
  std::string out_;
};

}  // namespace uringrpc::server
