// Unit tests for RequestRules, the RFC 9113 section 8 checks the session makes in place of
// nghttp2's: one request at a time, field by field, the verdict a client would see as a
// served request or an RST_STREAM PROTOCOL_ERROR. tests/e2e/h2_conformance_test.py sends
// the common cases over a socket; these add the corners a socket test would be slow to list.
#include "http2/request_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace uringrpc::http2 {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

const Fields kGrpcRequest = {
    {":method", "POST"},          {":scheme", "http"},    {":path", "/pkg.Service/Method"},
    {":authority", "localhost"},  {"content-type", "application/grpc"}, {"te", "trailers"},
    {"user-agent", "grpc-c++/1.51"},
};

// Feeds a request head; returns whether it is well-formed.
bool head_ok(const Fields& fields, RequestRules* rules_out = nullptr) {
  RequestRules local;
  RequestRules& rules = rules_out ? *rules_out : local;
  for (const auto& [n, v] : fields) {
    if (!rules.on_field(classify_field(n), n, v, false)) return false;
  }
  return rules.on_head_end();
}

Fields with(Fields base, std::string name, std::string value) {
  base.emplace_back(std::move(name), std::move(value));
  return base;
}

Fields replacing(Fields base, const std::string& name, std::string value) {
  for (auto& f : base) {
    if (f.first == name) f.second = std::move(value);
  }
  return base;
}

TEST(RequestRules, ClassifiesTheFieldsTheSessionFiles) {
  EXPECT_EQ(classify_field(":method"), FieldName::kMethod);
  EXPECT_EQ(classify_field(":path"), FieldName::kPath);
  EXPECT_EQ(classify_field(":scheme"), FieldName::kScheme);
  EXPECT_EQ(classify_field(":authority"), FieldName::kAuthority);
  EXPECT_EQ(classify_field(":status"), FieldName::kUnknownPseudo);
  EXPECT_EQ(classify_field(":protocol"), FieldName::kUnknownPseudo);
  EXPECT_EQ(classify_field("grpc-timeout"), FieldName::kGrpcTimeout);
  EXPECT_EQ(classify_field("grpc-encoding"), FieldName::kGrpcEncoding);
  EXPECT_EQ(classify_field("content-type"), FieldName::kContentType);
  EXPECT_EQ(classify_field("content-length"), FieldName::kContentLength);
  EXPECT_EQ(classify_field("transfer-encoding"), FieldName::kConnectionSpecific);
  EXPECT_EQ(classify_field("x-custom"), FieldName::kOther);
  EXPECT_EQ(classify_field("tf"), FieldName::kOther);
}

TEST(RequestRules, AGrpcRequestIsWellFormed) {
  EXPECT_TRUE(head_ok(kGrpcRequest));
  EXPECT_TRUE(head_ok(with(kGrpcRequest, "x-bin", "AAEC")));
  EXPECT_TRUE(head_ok(with(kGrpcRequest, "x-empty", "")));
  EXPECT_TRUE(head_ok(with(kGrpcRequest, "x-inner-space", "a b\tc")));
  EXPECT_TRUE(head_ok(with(kGrpcRequest, "x-utf8", "r\xC3\xA9sum\xC3\xA9")));
  EXPECT_TRUE(head_ok(replacing(kGrpcRequest, "te", "Trailers")));  // compared without case
}

TEST(RequestRules, FieldNamesAreLowerCaseTokens) {
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "X-Upper", "1")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x space", "1")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x:colon", "1")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, std::string("x\0y", 3), "1")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "", "1")));
}

TEST(RequestRules, FieldValuesHaveNoControlsAndNoOuterWhitespace) {
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x", "a\rb")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x", "a\nb")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x", std::string("a\0b", 3))));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x", "a\x7f")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x", " leading")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "x", "trailing\t")));
}

TEST(RequestRules, EveryPositionOfALongValueIsChecked) {
  // Values are checked eight bytes at a time: a bad byte anywhere, in a full word or the
  // tail, must be found; an inner tab or a high byte must not be taken for one.
  for (size_t len : {7u, 8u, 9u, 16u, 23u, 40u}) {
    for (size_t at = 0; at < len; ++at) {
      for (char bad : {'\0', '\n', '\r', '\x1f', '\x7f'}) {
        std::string v(len, 'a');
        v[at] = bad;
        EXPECT_FALSE(head_ok(with(kGrpcRequest, "x", v))) << len << " " << at << " " << int(bad);
        EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":path", "/" + v))) << len << " " << at;
      }
      std::string fine(len, 'a');
      if (at > 0 && at + 1 < len) fine[at] = '\t';
      fine[len / 2] = '\xff';
      EXPECT_TRUE(head_ok(with(kGrpcRequest, "x", fine))) << len << " " << at;
      std::string spaced(len, 'p');
      spaced[at] = ' ';
      EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":path", "/" + spaced))) << len << " " << at;
    }
  }
}

// The RFC's byte classes, spelled out here independently of request_rules.cc's tables.
bool tchar(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos);
}
bool name_char(int c) { return tchar(c) && !(c >= 'A' && c <= 'Z'); }
bool authority_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && std::string_view("-._~!$&'()*+,;=:@[]%").find(static_cast<char>(c)) != std::string_view::npos);
}
bool value_char(int c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

TEST(RequestRules, EveryByteAtEveryWordPositionGetsItsClassVerdict) {
  // Names, authorities, methods and values are scanned a word at a time against a fast set
  // of usual bytes (a-z 0-9 '-' for names; those and ':' '.' for authorities; A-Z for
  // methods), then by the byte table: every byte value, at the start, middle and end of
  // strings of every length class (gathered short word, overlapping last word, full words),
  // including each fast set's neighbours ('`' '{' '/' ':' ',' '.' '@' '[' 0x7f 0x80), must get the
  // RFC's verdict.
  for (size_t len : {1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u, 15u, 16u, 17u, 24u}) {
    for (size_t at : {size_t{0}, len / 2, len - 1}) {
      for (int c = 0; c < 256; ++c) {
        std::string s(len, 'a');
        s[at] = static_cast<char>(c);
        EXPECT_EQ(head_ok(with(kGrpcRequest, "x" + s, "1")), name_char(c)) << len << " " << at << " " << c;
        std::string host(len, '1');
        host[at] = static_cast<char>(c);
        EXPECT_EQ(head_ok(replacing(kGrpcRequest, ":authority", host)), authority_char(c))
            << len << " " << at << " " << c;
        std::string method(len, 'P');
        method[at] = static_cast<char>(c);
        bool method_ok = tchar(c) && method != "CONNECT";  // CONNECT has its own rules
        EXPECT_EQ(head_ok(replacing(kGrpcRequest, ":method", method)), method_ok) << len << " " << at << " " << c;
        std::string value = "v" + s + "v";  // no outer whitespace
        EXPECT_EQ(head_ok(with(kGrpcRequest, "x", value)), value_char(c)) << len << " " << at << " " << c;
      }
    }
  }
}

TEST(RequestRules, PseudoFieldsComeFirstOnceAndNotBlank) {
  Fields late = {{":method", "POST"}, {":scheme", "http"}, {"te", "trailers"}, {":path", "/a/b"}};
  EXPECT_FALSE(head_ok(late));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, ":path", "/x/y")));  // after regular fields, and twice
  Fields twice = {{":method", "POST"}, {":method", "POST"}, {":scheme", "http"}, {":path", "/a/b"}};
  EXPECT_FALSE(head_ok(twice));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":authority", "")));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":method", " POST")));
  Fields unknown = {{":protocol", "websocket"}, {":method", "POST"}, {":scheme", "http"}, {":path", "/a"}};
  EXPECT_FALSE(head_ok(unknown));
}

TEST(RequestRules, MethodSchemePathAreRequired) {
  for (const char* missing : {":method", ":scheme", ":path"}) {
    Fields f;
    for (const auto& field : kGrpcRequest) {
      if (field.first != missing) f.push_back(field);
    }
    EXPECT_FALSE(head_ok(f)) << missing;
  }
  // :authority is optional (RFC 9113 8.3.1); host may stand in for it.
  Fields no_authority = {{":method", "POST"}, {":scheme", "http"}, {":path", "/a/b"}};
  EXPECT_TRUE(head_ok(no_authority));
  EXPECT_TRUE(head_ok(with(no_authority, "host", "example.com:80")));
  EXPECT_FALSE(head_ok(with(with(no_authority, "host", "a"), "host", "a")));
}

TEST(RequestRules, PseudoFieldValuesFollowTheirGrammar) {
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":method", "PO ST")));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":scheme", "1http")));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":scheme", "ht tp")));
  EXPECT_TRUE(head_ok(replacing(kGrpcRequest, ":scheme", "HTTPS")));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":path", "/a b")));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":path", "relative")));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, ":authority", "host/path")));
  EXPECT_TRUE(head_ok(replacing(kGrpcRequest, ":authority", "user@[::1]:8080")));
}

TEST(RequestRules, AsteriskPathOnlyForOptions) {
  Fields options = {{":method", "OPTIONS"}, {":scheme", "https"}, {":path", "*"}, {":authority", "a"}};
  EXPECT_TRUE(head_ok(options));
  EXPECT_FALSE(head_ok(replacing(options, ":method", "POST")));
  // Other schemes carry other kinds of targets.
  EXPECT_TRUE(head_ok(replacing(replacing(kGrpcRequest, ":scheme", "urn"), ":path", "x:y")));
}

TEST(RequestRules, ConnectNamesOnlyAnAuthority) {
  Fields connect = {{":method", "CONNECT"}, {":authority", "example.com:443"}};
  EXPECT_TRUE(head_ok(connect));
  EXPECT_FALSE(head_ok({{":method", "CONNECT"}}));
  EXPECT_FALSE(head_ok({{":method", "CONNECT"}, {":authority", "a:1"}, {":path", "/"}}));
  EXPECT_FALSE(head_ok({{":path", "/"}, {":method", "CONNECT"}, {":authority", "a:1"}}));
}

TEST(RequestRules, ConnectionSpecificFieldsAndTeOtherThanTrailers) {
  for (const char* name : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
    EXPECT_FALSE(head_ok(with(kGrpcRequest, name, "x"))) << name;
  }
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, "te", "trailers, deflate")));
  EXPECT_FALSE(head_ok(replacing(kGrpcRequest, "te", "gzip")));
}

TEST(RequestRules, ContentLengthMatchesTheBody) {
  RequestRules rules;
  ASSERT_TRUE(head_ok(with(kGrpcRequest, "content-length", "10"), &rules));
  EXPECT_TRUE(rules.on_data(4));
  EXPECT_TRUE(rules.on_data(6));
  EXPECT_TRUE(rules.on_end_stream());

  RequestRules short_body;
  ASSERT_TRUE(head_ok(with(kGrpcRequest, "content-length", "10"), &short_body));
  EXPECT_TRUE(short_body.on_data(9));
  EXPECT_FALSE(short_body.on_end_stream());
  EXPECT_TRUE(short_body.malformed());

  RequestRules long_body;
  ASSERT_TRUE(head_ok(with(kGrpcRequest, "content-length", "3"), &long_body));
  EXPECT_FALSE(long_body.on_data(4));
  EXPECT_FALSE(long_body.on_end_stream());  // stays malformed

  RequestRules none;  // no content-length: any body
  ASSERT_TRUE(head_ok(kGrpcRequest, &none));
  EXPECT_TRUE(none.on_data(1u << 20));
  EXPECT_TRUE(none.on_end_stream());

  EXPECT_FALSE(head_ok(with(kGrpcRequest, "content-length", "")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "content-length", "1x")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "content-length", "-1")));
  EXPECT_FALSE(head_ok(with(kGrpcRequest, "content-length", "9999999999999999999999")));
  EXPECT_FALSE(head_ok(with(with(kGrpcRequest, "content-length", "1"), "content-length", "1")));
}

TEST(RequestRules, TrailersCarryNoPseudoFields) {
  RequestRules rules;
  ASSERT_TRUE(head_ok(kGrpcRequest, &rules));
  EXPECT_TRUE(rules.on_field(FieldName::kOther, "x-trailer", "1", true));
  EXPECT_FALSE(rules.on_field(FieldName::kMethod, ":method", "POST", true));
  EXPECT_TRUE(rules.malformed());
  EXPECT_FALSE(rules.on_field(FieldName::kOther, "x-ok", "1", true));  // malformed stays malformed

  RequestRules conn;
  ASSERT_TRUE(head_ok(kGrpcRequest, &conn));
  EXPECT_FALSE(conn.on_field(FieldName::kConnectionSpecific, "connection", "close", true));
}

}  // namespace
}  // namespace uringrpc::http2
