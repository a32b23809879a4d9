// The grpc-timeout request header ("TimeoutValue TimeoutUnit", e.g. "100m") to and from a
// duration. The HTTP/2 -> gRPC call layer parses it to arm the call's deadline; tests and
// the fuzzers use the formatter.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace uringrpc::rpc {

// Parsed timeouts saturate here (~146 years). Far beyond any real deadline, and small
// enough that steady_clock::now() + timeout cannot overflow a time_point.
inline constexpr std::chrono::nanoseconds kMaxGrpcTimeout{std::numeric_limits<int64_t>::max() / 2};

// 1 to 8 ASCII digits then one case-sensitive unit: H M S m u n (hours, minutes,
// seconds, millis, micros, nanos). Anything else (empty, 9+ digits, sign, spaces,
// decimal point, other unit) yields nullopt. Never overflows: see kMaxGrpcTimeout.
std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view text) noexcept;

// A valid header value of at most 8 digits, in the finest unit that fits, rounded up so
// the peer's deadline is never earlier than ours. Zero or negative gives "0n".
std::string format_grpc_timeout(std::chrono::nanoseconds timeout);

}  // namespace uringrpc::rpc
