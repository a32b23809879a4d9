// Unit tests for grpc-message percent-encoding: which bytes are escaped, the round trip
// of every byte, and the lenient decoder that never fails.
#include "rpc/percent_encoding.h"

#include <gtest/gtest.h>

namespace uringrpc::rpc {
namespace {

TEST(PercentEncoding, PrintableAsciiIsUnchanged) {
  EXPECT_EQ(percent_encode_message("Hello, world! ~{}[]<>\"'\\ 0-9"), "Hello, world! ~{}[]<>\"'\\ 0-9");
  EXPECT_EQ(percent_encode_message(""), "");
}

TEST(PercentEncoding, PercentSignIsEscaped) {
  EXPECT_EQ(percent_encode_message("100%"), "100%25");
  EXPECT_EQ(percent_encode_message("%%"), "%25%25");
}

TEST(PercentEncoding, ControlAndHighBytesBecomeUppercaseHex) {
  EXPECT_EQ(percent_encode_message("a\nb\tc"), "a%0Ab%09c");
  EXPECT_EQ(percent_encode_message(std::string("\0\x1F\x7F\xFF", 4)), "%00%1F%7F%FF");
}

TEST(PercentEncoding, Utf8IsEncodedByteWise) {
  // "résumé ✓" as in the gRPC spec's example of non-ASCII messages.
  EXPECT_EQ(percent_encode_message("r\xC3\xA9sum\xC3\xA9 \xE2\x9C\x93"), "r%C3%A9sum%C3%A9 %E2%9C%93");
  EXPECT_EQ(percent_decode_message("r%C3%A9sum%C3%A9 %E2%9C%93"), "r\xC3\xA9sum\xC3\xA9 \xE2\x9C\x93");
}

TEST(PercentEncoding, EveryByteValueRoundTrips) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string encoded = percent_encode_message(all);
  for (char c : encoded) {
    EXPECT_GE(c, 0x20);
    EXPECT_LE(c, 0x7E);
  }
  // 95 printable bytes minus '%' stay, the other 161 become three characters.
  EXPECT_EQ(encoded.size(), 94u + 162u * 3u);
  EXPECT_EQ(percent_decode_message(encoded), all);
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    EXPECT_EQ(percent_decode_message(percent_encode_message(one)), one) << b;
  }
}

TEST(PercentEncoding, DecodeAcceptsLowercaseHex) {
  EXPECT_EQ(percent_decode_message("%c3%a9%0a"), "\xC3\xA9\n");
}

TEST(PercentEncoding, MalformedEscapesAreKeptLiterally) {
  EXPECT_EQ(percent_decode_message("%"), "%");
  EXPECT_EQ(percent_decode_message("100%"), "100%");
  EXPECT_EQ(percent_decode_message("%4"), "%4");
  EXPECT_EQ(percent_decode_message("%G0"), "%G0");
  EXPECT_EQ(percent_decode_message("%0G"), "%0G");
  EXPECT_EQ(percent_decode_message("% 41"), "% 41");
  EXPECT_EQ(percent_decode_message("%%41"), "%A");
  EXPECT_EQ(percent_decode_message("a%zzb%41"), "a%zzbA");
}

TEST(PercentEncoding, DecodedBytesAreNotDecodedAgain) {
  EXPECT_EQ(percent_decode_message("%2541"), "%41");
}

TEST(PercentEncoding, DecodePassesThroughUnescapedBytes) {
  EXPECT_EQ(percent_decode_message(std::string("a\0\xFF", 3)), std::string("a\0\xFF", 3));
}

}  // namespace
}  // namespace uringrpc::rpc
