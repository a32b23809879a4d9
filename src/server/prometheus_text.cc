// Prometheus text format 0.0.4:
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
#include "server/prometheus_text.h"

#include <charconv>
#include <cmath>

namespace uringrpc::server {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::series(std::string_view name, std::string_view suffix, const Labels& labels,
                            std::string_view extra_name, std::string_view extra_value) {
  out_ += name;
  out_ += suffix;
  if (!labels.empty() || !extra_name.empty()) {
    out_ += '{';
    bool first = true;
    auto add = [&](std::string_view k, std::string_view v) {
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      out_ += escape_label_value(v);
      out_ += '"';
    };
    for (const auto& [k, v] : labels) add(k, v);
    if (!extra_name.empty()) add(extra_name, extra_value);
    out_ += '}';
  }
  out_ += ' ';
}

void PrometheusText::sample(std::string_view name, const Labels& labels, uint64_t value) {
  series(name, {}, labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, const Labels& labels, double value) {
  series(name, {}, labels);
  out_ += format_value(value);
  out_ += '\n';
}

void PrometheusText::histogram(std::string_view name, const Labels& labels, std::span<const double> bounds,
                               std::span<const uint64_t> counts, double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    series(name, "_bucket", labels, "le", i < bounds.size() ? format_value(bounds[i]) : "+Inf");
    out_ += std::to_string(cumulative);
    out_ += '\n';
  }
  series(name, "_sum", labels);
  out_ += format_value(sum);
  out_ += '\n';
  series(name, "_count", labels);
  out_ += std::to_string(cumulative);
  out_ += '\n';
}

}  // namespace uringrpc::server
