// grpc-timeout header parsing and formatting, per the gRPC over HTTP/2 spec. Parsing is
// on the request path, so it is allocation-free and never throws.
#include "rpc/grpc_timeout.h"

namespace uringrpc::rpc {
namespace {

constexpr size_t kMaxTimeoutDigits = 8;
constexpr int64_t kMaxTimeoutValue = 99'999'999;

struct TimeoutUnit {
  char letter;
  int64_t nanos;
};

// Finest first: the formatter takes the first unit in which the value fits in 8 digits.
constexpr TimeoutUnit kUnits[] = {
    {'n', 1},
    {'u', 1'000},
    {'m', 1'000'000},
    {'S', 1'000'000'000},
    {'M', 60 * int64_t{1'000'000'000}},
    {'H', 3600 * int64_t{1'000'000'000}},
};

}  // namespace

std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view text) noexcept {
  if (text.size() < 2 || text.size() > kMaxTimeoutDigits + 1) return std::nullopt;
  int64_t value = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  const char letter = text.back();
  for (const TimeoutUnit& unit : kUnits) {
    if (unit.letter != letter) continue;
    // value <= 99999999, so only the division can tell us about overflow safely.
    if (value > kMaxGrpcTimeout.count() / unit.nanos) return kMaxGrpcTimeout;
    return std::chrono::nanoseconds(value * unit.nanos);
  }
  return std::nullopt;
}

std::string format_grpc_timeout(std::chrono::nanoseconds timeout) {
  const int64_t ns = timeout.count();
  if (ns <= 0) return "0n";
  for (const TimeoutUnit& unit : kUnits) {
    // Ceiling division without the overflow of ns + unit.nanos - 1.
    const int64_t value = ns / unit.nanos + (ns % unit.nanos != 0 ? 1 : 0);
    if (value <= kMaxTimeoutValue) {
      std::string out = std::to_string(value);
      out += unit.letter;
      return out;
    }
  }
  // Unreachable: int64 nanoseconds are at most ~2.6 million hours, well within 8 digits.
  return "99999999H";
}

}  // namespace uringrpc::rpc
