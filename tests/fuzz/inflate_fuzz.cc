// libFuzzer target for message inflation (src/rpc/compression.h), the parser a client's
// compressed bytes reach: any input, gzip or deflate, under a small limit, never crashes,
// never yields more than the limit, and what does inflate compresses back to the same.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "rpc/compression.h"

using namespace uringrpc;
using namespace uringrpc::rpc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  // First byte: the algorithm; next two: the limit (0 to 65535), so the fuzzer reaches
  // both sides of it.
  const Compression c = data[0] & 1 ? Compression::kGzip : Compression::kDeflate;
  const size_t limit = size_t{data[1]} << 8 | data[2];
  std::string_view in(reinterpret_cast<const char*>(data + 3), size - 3);
  Inflated r = inflate_message(c, in, limit);
  if (r.error != InflateError::kNone) {
    FUZZ_CHECK(r.message.size() == 0);
    return 0;
  }
  FUZZ_CHECK(r.message.size() <= limit);
  if (auto again = deflate_message(c, r.message.view())) {
    Inflated back = inflate_message(c, again->view(), limit);
    FUZZ_CHECK(back.error == InflateError::kNone && back.message.view() == r.message.view());
  }
  return 0;
}
