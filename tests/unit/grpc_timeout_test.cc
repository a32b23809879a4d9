// Unit tests for grpc-timeout parsing and formatting: every unit, the 8-digit limit,
// case-sensitive units, saturation instead of overflow, and round-up formatting.
#include "rpc/grpc_timeout.h"

#include <gtest/gtest.h>

namespace uringrpc::rpc {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(GrpcTimeout, ParsesEveryUnit) {
  EXPECT_EQ(parse_grpc_timeout("1H"), hours(1));
  EXPECT_EQ(parse_grpc_timeout("2M"), minutes(2));
  EXPECT_EQ(parse_grpc_timeout("1S"), seconds(1));
  EXPECT_EQ(parse_grpc_timeout("100m"), milliseconds(100));
  EXPECT_EQ(parse_grpc_timeout("250u"), microseconds(250));
  EXPECT_EQ(parse_grpc_timeout("99999999n"), nanoseconds(99999999));
}

TEST(GrpcTimeout, ParsesZeroAndLeadingZeros) {
  EXPECT_EQ(parse_grpc_timeout("0m"), nanoseconds(0));
  EXPECT_EQ(parse_grpc_timeout("00000001S"), seconds(1));
}

TEST(GrpcTimeout, LargestValuesFitOrSaturateWithoutOverflow) {
  EXPECT_EQ(parse_grpc_timeout("99999999S"), seconds(99999999));
  // 99999999 minutes fits in int64 nanoseconds but exceeds the saturation point.
  EXPECT_EQ(parse_grpc_timeout("99999999M"), kMaxGrpcTimeout);
  EXPECT_EQ(parse_grpc_timeout("99999999H"), kMaxGrpcTimeout);
  // The saturated value can still be added to a clock reading.
  const auto deadline = std::chrono::steady_clock::now() + *parse_grpc_timeout("99999999H");
  EXPECT_GT(deadline, std::chrono::steady_clock::now());
}

TEST(GrpcTimeout, RejectsMalformedValues) {
  for (const char* bad : {"", "1", "S", "123456789S", "000000000S", "-1S", "+1S", " 1S", "1S ", "1 S",
                          "1.5S", "1e3S", "0x1S", "1SS", "S1"}) {
    EXPECT_EQ(parse_grpc_timeout(bad), std::nullopt) << '"' << bad << '"';
  }
  EXPECT_EQ(parse_grpc_timeout(std::string_view("1\0S", 3)), std::nullopt);
}

TEST(GrpcTimeout, UnitsAreCaseSensitive) {
  for (const char* bad : {"1s", "1h", "1U", "1N", "1x", "1ms"}) {
    EXPECT_EQ(parse_grpc_timeout(bad), std::nullopt) << bad;
  }
}

TEST(GrpcTimeout, FormatsInTheFinestUnitThatFitsInEightDigits) {
  EXPECT_EQ(format_grpc_timeout(nanoseconds(1)), "1n");
  EXPECT_EQ(format_grpc_timeout(nanoseconds(99999999)), "99999999n");
  EXPECT_EQ(format_grpc_timeout(nanoseconds(100000000)), "100000u");
  EXPECT_EQ(format_grpc_timeout(seconds(1)), "1000000u");
  EXPECT_EQ(format_grpc_timeout(seconds(1000)), "1000000m");
  EXPECT_EQ(format_grpc_timeout(hours(1)), "3600000m");
  EXPECT_EQ(format_grpc_timeout(hours(24 * 365)), "31536000S");
}

TEST(GrpcTimeout, FormatRoundsUpSoTheDeadlineIsNeverEarlier) {
  EXPECT_EQ(format_grpc_timeout(nanoseconds(100000001)), "100001u");
  // 100000000.001 ms does not fit in 8 digits of m, so it becomes whole seconds, rounded up.
  EXPECT_EQ(format_grpc_timeout(seconds(100000) + nanoseconds(1)), "100001S");
}

TEST(GrpcTimeout, FormatOfZeroOrNegativeIsZero) {
  EXPECT_EQ(format_grpc_timeout(nanoseconds(0)), "0n");
  EXPECT_EQ(format_grpc_timeout(seconds(-5)), "0n");
}

TEST(GrpcTimeout, FormatHandlesTheLargestDuration) {
  const std::string s = format_grpc_timeout(nanoseconds::max());
  EXPECT_EQ(s.back(), 'H');
  EXPECT_LE(s.size(), 9u);
  EXPECT_EQ(parse_grpc_timeout(s), kMaxGrpcTimeout);
}

TEST(GrpcTimeout, FormatThenParseNeverShortensTheTimeoutAndStaysClose) {
  for (int64_t ns = 1; ns < int64_t{1} << 62; ns = ns * 3 + 7) {
    const std::string s = format_grpc_timeout(nanoseconds(ns));
    ASSERT_LE(s.size(), 9u) << ns;
    const auto parsed = parse_grpc_timeout(s);
    ASSERT_TRUE(parsed.has_value()) << s;
    if (ns > kMaxGrpcTimeout.count()) continue;
    EXPECT_GE(parsed->count(), ns) << s;
    // The finest unit that fits holds at least ~10^5 of them (units grow by at most
    // 1000x), so rounding up costs at most about one part in 10^5.
    EXPECT_LE(parsed->count() - ns, ns / 99'999) << s;
  }
}

}  // namespace
}  // namespace uringrpc::rpc
