// Unit tests for metadata key/value rules and the reason text handlers see when the
// metadata they want to send is refused.
#include "rpc/metadata_validation.h"

#include <gtest/gtest.h>

namespace uringrpc::rpc {
namespace {

TEST(MetadataValidation, KeysAllowOnlyLowercaseDigitsDashUnderscoreDot) {
  for (const char* good : {"a", "x-trace-id", "my_key.v2", "0", "-", "abc-bin", "z.9_-"}) {
    EXPECT_TRUE(is_valid_metadata_key(good)) << good;
  }
  for (const char* bad : {"", "Error", "x-Trace", "a b", ":path", "key/1", "k\xC3\xA9", "a\tb", "a=b"}) {
    EXPECT_FALSE(is_valid_metadata_key(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_metadata_key(std::string_view("a\0b", 3)));
}

TEST(MetadataValidation, BinaryKeysEndInDashBin) {
  EXPECT_TRUE(is_binary_metadata_key("trace-bin"));
  EXPECT_TRUE(is_binary_metadata_key("grpc-status-details-bin"));
  EXPECT_FALSE(is_binary_metadata_key("trace-bi"));
  EXPECT_FALSE(is_binary_metadata_key("bin"));
  EXPECT_FALSE(is_binary_metadata_key("trace-BIN"));
  EXPECT_FALSE(is_binary_metadata_key("trace_bin"));
}

TEST(MetadataValidation, ValuesMustBePrintableAscii) {
  EXPECT_TRUE(is_valid_metadata_value(""));
  EXPECT_TRUE(is_valid_metadata_value(" ~ printable !\"#$%&'()*+,-./ "));
  for (const char* bad : {"a\nb", "\t", "\x7F", "caf\xC3\xA9", "\r\n"}) {
    EXPECT_FALSE(is_valid_metadata_value(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_metadata_value(std::string_view("\0", 1)));
}

TEST(MetadataValidation, TransportOwnedKeysAreReserved) {
  for (const char* reserved : {"grpc-status", "grpc-message", "grpc-timeout", "grpc-encoding", "grpc-x",
                               ":status", ":path", "content-type", "content-length", "te", "host",
                               "connection", "keep-alive", "proxy-connection", "transfer-encoding",
                               "upgrade"}) {
    EXPECT_TRUE(is_reserved_metadata_key(reserved)) << reserved;
  }
  for (const char* free : {"user-agent", "grpc", "grpcx-foo", "x-grpc-status", "content-typex", "tee",
                           "hostname", "x-upgrade", "authorization"}) {
    EXPECT_FALSE(is_reserved_metadata_key(free)) << free;
  }
}

TEST(MetadataValidation, ValidMetadataGivesEmptyReason) {
  EXPECT_EQ(validate_outgoing_metadata({}, "initial"), "");
  EXPECT_EQ(validate_outgoing_metadata({{"x-id", "42"}, {"blob-bin", std::string("\0\xFF\n", 3)},
                                        {"empty", ""}, {"user-agent", "me"}},
                                       "trailing"),
            "");
}

TEST(MetadataValidation, UppercaseKeyIsNamedWithTheRule) {
  EXPECT_EQ(validate_outgoing_metadata({{"Error", "x"}}, "trailing"),
            "invalid trailing metadata: key \"Error\" has uppercase character 'E' "
            "(keys must be lowercase 0-9a-z-_.)");
}

TEST(MetadataValidation, IllegalKeyCharacterIsNamed) {
  EXPECT_EQ(validate_outgoing_metadata({{"a b", "x"}}, "initial"),
            "invalid initial metadata: key \"a b\" has illegal character ' ' "
            "(keys must be lowercase 0-9a-z-_.)");
  EXPECT_EQ(validate_outgoing_metadata({{"a\nb", "x"}}, "initial"),
            "invalid initial metadata: key \"a\\x0Ab\" has illegal character 0x0A "
            "(keys must be lowercase 0-9a-z-_.)");
}

TEST(MetadataValidation, EmptyKeyIsRefused) {
  const std::string reason = validate_outgoing_metadata({{"", "x"}}, "initial");
  EXPECT_EQ(reason.rfind("invalid initial metadata: empty key", 0), 0u) << reason;
}

TEST(MetadataValidation, ReservedKeyIsRefused) {
  EXPECT_EQ(validate_outgoing_metadata({{"ok", "1"}, {"grpc-status", "0"}}, "trailing"),
            "invalid trailing metadata: key \"grpc-status\" is reserved for the gRPC transport");
  EXPECT_EQ(validate_outgoing_metadata({{"content-type", "text/plain"}}, "initial"),
            "invalid initial metadata: key \"content-type\" is reserved for the gRPC transport");
  EXPECT_EQ(validate_outgoing_metadata({{"connection", "close"}}, "initial"),
            "invalid initial metadata: key \"connection\" is reserved for the gRPC transport");
}

TEST(MetadataValidation, PseudoHeaderIsRefused) {
  EXPECT_EQ(validate_outgoing_metadata({{":status", "500"}}, "initial"),
            "invalid initial metadata: key \":status\" is a pseudo-header, reserved for the transport");
}

TEST(MetadataValidation, NonPrintableValueNamesKeyByteAndOffset) {
  EXPECT_EQ(validate_outgoing_metadata({{"x-note", "line1\nline2"}}, "trailing"),
            "invalid trailing metadata: value of key \"x-note\" has non-printable byte 0x0A at offset 5 "
            "(values must be printable ASCII; use a key ending in \"-bin\" for binary)");
}

TEST(MetadataValidation, BinaryValuesMayHoldAnyByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(validate_outgoing_metadata({{"x-bin", all}}, "initial"), "");
}

TEST(MetadataValidation, FirstOffendingEntryIsReported) {
  const std::string reason =
      validate_outgoing_metadata({{"fine", "1"}, {"Bad1", "1"}, {"bad2", "\x01"}}, "initial");
  EXPECT_NE(reason.find("\"Bad1\""), std::string::npos) << reason;
  EXPECT_EQ(reason.find("bad2"), std::string::npos) << reason;
}

TEST(MetadataValidation, ReasonIsOnePrintableLineEvenForHostileKeys) {
  const std::string key = std::string(200, 'A') + "\n\"\\\xFF";
  const std::string reason = validate_outgoing_metadata({{key, "v"}}, "trailing");
  ASSERT_FALSE(reason.empty());
  for (char c : reason) {
    EXPECT_GE(c, 0x20);
    EXPECT_LE(c, 0x7E);
  }
  EXPECT_LT(reason.size(), 200u);  // the key is cut, not echoed whole
  EXPECT_NE(reason.find("\"..."), std::string::npos) << reason;
}

TEST(MetadataValidation, QuotesAndBackslashesInKeysAreEscaped) {
  EXPECT_EQ(validate_outgoing_metadata({{"a\"b", "v"}}, "initial"),
            "invalid initial metadata: key \"a\\\"b\" has illegal character '\"' "
            "(keys must be lowercase 0-9a-z-_.)");
}

}  // namespace
}  // namespace uringrpc::rpc
