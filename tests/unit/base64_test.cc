// Unit tests for base64 of -bin metadata: RFC 4648 vectors, padded and unpadded forms,
// and everything the decoder must refuse.
#include "rpc/base64.h"

#include <gtest/gtest.h>

#include <random>

namespace uringrpc::rpc {
namespace {

struct Vector {
  const char* plain;
  const char* padded;
  const char* unpadded;
};

// RFC 4648 section 10.
constexpr Vector kRfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

TEST(Base64, EncodesRfc4648VectorsUnpaddedByDefault) {
  for (const auto& v : kRfc4648) EXPECT_EQ(base64_encode(v.plain), v.unpadded) << v.plain;
}

TEST(Base64, EncodesRfc4648VectorsPaddedOnRequest) {
  for (const auto& v : kRfc4648) EXPECT_EQ(base64_encode(v.plain, /*pad=*/true), v.padded) << v.plain;
}

TEST(Base64, DecodesPaddedAndUnpaddedRfc4648Vectors) {
  for (const auto& v : kRfc4648) {
    EXPECT_EQ(base64_decode(v.padded), v.plain) << v.padded;
    EXPECT_EQ(base64_decode(v.unpadded), v.plain) << v.unpadded;
  }
}

TEST(Base64, UsesTheStandardAlphabetWithPlusAndSlash) {
  EXPECT_EQ(base64_encode("\xFB\xFF\xBF"), "+/+/");
  EXPECT_EQ(base64_decode("+/+/"), "\xFB\xFF\xBF");
  EXPECT_EQ(base64_decode("-_-_"), std::nullopt);  // URL-safe alphabet is not accepted
}

TEST(Base64, AllByteValuesRoundTripAtEveryLength) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  for (size_t n = 0; n <= all.size(); ++n) {
    const std::string s = all.substr(256 - n);
    EXPECT_EQ(base64_decode(base64_encode(s)), s) << n;
    EXPECT_EQ(base64_decode(base64_encode(s, true)), s) << n;
  }
}

TEST(Base64, RandomDataRoundTrips) {
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 1000, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    ASSERT_EQ(base64_decode(base64_encode(s, i % 2 == 0)), s);
  }
}

TEST(Base64, RejectsCharactersOutsideTheAlphabet) {
  for (const char* bad : {"Zm9v!", "Zm 9v", "Zm9v\n", " Zm9v", "Zm9\x80", "Zm.v", "Zg=\t"}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(base64_decode(std::string_view("Zm\0v", 4)), std::nullopt);
}

TEST(Base64, RejectsImpossibleLengths) {
  for (const char* bad : {"Z", "Zm9vY", "Zm9vYmFyZ", "Z===", "Zm9vY==="}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
}

TEST(Base64, RejectsMisplacedOrPartialPadding) {
  for (const char* bad : {"=", "==", "===", "====", "Zg=", "Zg===", "Z=g=", "=Zm9", "Zm=v", "Zm9v=",
                          "Zm9v====", "Zg==Zm9v", "Zg==="}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
}

TEST(Base64, IgnoresStrayLowBitsInTheLastCharacter) {
  // "Zh" carries bits past the one byte it encodes; lenient like most decoders.
  EXPECT_EQ(base64_decode("Zh"), "f");
  EXPECT_EQ(base64_decode("Zh=="), "f");
}

}  // namespace
}  // namespace uringrpc::rpc
