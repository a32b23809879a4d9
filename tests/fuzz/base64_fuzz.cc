// libFuzzer target for "-bin" metadata base64 (src/rpc/base64.h): decode takes any bytes
// without crashing; whatever decodes re-encodes to text that decodes to the same bytes;
// and every byte string round-trips through both the padded and the unpadded encoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rpc/base64.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace uringrpc::rpc;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // Arbitrary text as a peer would send it.
  if (auto decoded = base64_decode(input)) {
    // Stray low bits are ignored, so the text may not come back byte for byte, but its
    // canonical re-encoding must decode to the same bytes, padded or not.
    const std::string unpadded = base64_encode(*decoded);
    const std::string padded = base64_encode(*decoded, true);
    FUZZ_CHECK(base64_decode(unpadded) == decoded);
    FUZZ_CHECK(base64_decode(padded) == decoded);
    // Same length as the input once its padding is dropped.
    size_t n = input.size();
    while (n > 0 && input[n - 1] == '=') --n;
    FUZZ_CHECK(unpadded.size() == n);
  }

  // Arbitrary bytes as a handler would put in metadata.
  const std::string unpadded = base64_encode(input);
  const std::string padded = base64_encode(input, true);
  FUZZ_CHECK(padded.size() % 4 == 0);
  FUZZ_CHECK(padded.compare(0, unpadded.size(), unpadded) == 0);
  FUZZ_CHECK(base64_decode(unpadded) == std::string(input));
  FUZZ_CHECK(base64_decode(padded) == std::string(input));
  return 0;
}
