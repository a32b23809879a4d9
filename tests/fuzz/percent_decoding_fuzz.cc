// libFuzzer target for grpc-message percent-encoding (src/rpc/percent_encoding.h): decode
// takes any bytes without failing, never grows its input, and decode(encode(x)) == x with
// encode's output inside the printable ASCII the spec allows.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rpc/percent_encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace uringrpc::rpc;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const std::string decoded = percent_decode_message(input);
  FUZZ_CHECK(decoded.size() <= input.size());

  const std::string encoded = percent_encode_message(input);
  for (char c : encoded) FUZZ_CHECK(c >= 0x20 && c <= 0x7E);
  FUZZ_CHECK(percent_decode_message(encoded) == input);
  // Text with nothing to escape passes through unchanged.
  bool plain = true;
  for (char c : input) plain &= (c >= 0x20 && c <= 0x7E && c != '%');
  if (plain) FUZZ_CHECK(encoded == input);
  return 0;
}
