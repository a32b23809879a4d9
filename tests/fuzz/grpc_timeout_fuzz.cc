// libFuzzer target for grpc-timeout parsing (src/rpc/grpc_timeout.h): any header value is
// parsed without crashing or overflowing, a parsed value stays within kMaxGrpcTimeout, and
// formatting a parsed (or fuzzed) duration gives a value that parses back, never earlier.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rpc/grpc_timeout.h"

namespace {

using namespace uringrpc::rpc;
using std::chrono::nanoseconds;

// format then parse: the result is a valid header value, never earlier than asked (the
// formatter rounds up), and only slightly later.
void check_round_trip(nanoseconds d) {
  const std::string text = format_grpc_timeout(d);
  FUZZ_CHECK(text.size() >= 2 && text.size() <= 9);
  auto back = parse_grpc_timeout(text);
  FUZZ_CHECK(back.has_value());
  if (d.count() <= 0) {
    FUZZ_CHECK(back->count() == 0);
    return;
  }
  FUZZ_CHECK(*back >= d || *back == kMaxGrpcTimeout);
  // Rounding up adds less than one unit, and a coarser unit is only taken when the value
  // needs 9+ digits in the finer one, so the excess is below 1e-5 of the value; 1e-3 is
  // a loose bound that still catches a wrong unit or a lost digit.
  FUZZ_CHECK(back->count() - d.count() <= d.count() / 1000 + 1 || *back == kMaxGrpcTimeout);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_grpc_timeout(text);
  if (parsed) {
    // Only "1-8 digits + unit" may parse.
    FUZZ_CHECK(size >= 2 && size <= 9);
    for (size_t i = 0; i + 1 < size; ++i) FUZZ_CHECK(data[i] >= '0' && data[i] <= '9');
    FUZZ_CHECK(std::strchr("HMSmun", data[size - 1]) != nullptr && data[size - 1] != 0);
    FUZZ_CHECK(parsed->count() >= 0 && *parsed <= kMaxGrpcTimeout);
    check_round_trip(*parsed);
  }
  // The same bytes as a raw duration, to reach every formatter branch.
  if (size >= sizeof(int64_t)) {
    int64_t ns;
    std::memcpy(&ns, data, sizeof ns);
    check_round_trip(nanoseconds(ns));
  }
  return 0;
}
