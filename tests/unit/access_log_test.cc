// The access log's formatting (server/access_log.cc): JSON string escaping walked across
// UTF-8's boundaries (first and last valid byte of each range, truncated sequences), the
// line's fields and time format, and ServerOptions::access_log's validation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "server/access_log.h"
#include "uringrpc/server.h"

namespace uringrpc::server {
namespace {

std::string json(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(AccessLogJson, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json(""), "\"\"");
  EXPECT_EQ(json("plain /pkg.Svc/Method"), "\"plain /pkg.Svc/Method\"");
  EXPECT_EQ(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(json(std::string("\0\x01\x1f", 3)), "\"\\u0000\\u0001\\u001f\"");
  EXPECT_EQ(json("\x7f"), "\"\\u007f\"");
  EXPECT_EQ(json(" ~"), "\" ~\"");  // 0x20 and 0x7e: the printable range's ends stay as they are
}

TEST(AccessLogJson, KeepsWellFormedUtf8AtEachRangesEnds) {
  for (std::string s : {"\xc2\x80", "\xdf\xbf",                       // 2 bytes: U+0080, U+07FF
                        "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",  // U+0800, U+D7FF, U+E000
                        "\xef\xbf\xbf",                                    // U+FFFF
                        "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",           // U+10000, U+10FFFF
                        "caf\xc3\xa9"}) {
    EXPECT_EQ(json(s), "\"" + s + "\"") << s;
  }
}

TEST(AccessLogJson, ReplacesEachByteOfMalformedUtf8) {
  const std::string bad = "\\ufffd";
  EXPECT_EQ(json("\x80"), "\"" + bad + "\"");                    // a lone continuation byte
  EXPECT_EQ(json("\xc0\xaf"), "\"" + bad + bad + "\"");          // overlong '/'
  EXPECT_EQ(json("\xc1\xbf"), "\"" + bad + bad + "\"");          // overlong, last of the range
  EXPECT_EQ(json("\xe0\x9f\xbf"), "\"" + bad + bad + bad + "\""); // overlong 3-byte form
  EXPECT_EQ(json("\xed\xa0\x80"), "\"" + bad + bad + bad + "\""); // surrogate U+D800
  EXPECT_EQ(json("\xf4\x90\x80\x80"), "\"" + bad + bad + bad + bad + "\"");  // past U+10FFFF
  EXPECT_EQ(json("\xf5\x80\x80\x80"), "\"" + bad + bad + bad + bad + "\"");
  EXPECT_EQ(json("\xff"), "\"" + bad + "\"");
  EXPECT_EQ(json("a\xc3"), "\"a" + bad + "\"");                  // truncated at the end
  EXPECT_EQ(json("\xe2\x82"), "\"" + bad + bad + "\"");
  EXPECT_EQ(json("\xc3(x"), "\"" + bad + "(x\"");                // bad continuation: resync
}

TEST(AccessLogLine, HasEveryFieldInOrder) {
  CallStats stats;
  stats.code = StatusCode::DEADLINE_EXCEEDED;
  // 2026-12-05T11:22:46.000042Z
  stats.start = std::chrono::system_clock::time_point(std::chrono::seconds(1796469766)) + std::chrono::microseconds(42);
  stats.duration = std::chrono::microseconds(1500) + std::chrono::nanoseconds(999);
  stats.messages_received = 1;
  stats.bytes_received = 15;
  stats.messages_sent = 2;
  stats.bytes_sent = 30;
  EXPECT_EQ(access_log_line("ipv4:127.0.0.1:5555", "/pkg.Svc/M", "grpc-c++/1.51", stats),
            "{\"time\":\"2026-12-05T11:22:46.000042Z\",\"peer\":\"ipv4:127.0.0.1:5555\",\"method\":\"/pkg.Svc/M\","
            "\"code\":\"DEADLINE_EXCEEDED\",\"grpc_code\":4,\"duration_us\":1500,\"bytes_in\":15,\"bytes_out\":30,"
            "\"messages_in\":1,\"messages_out\":2,\"user_agent\":\"grpc-c++/1.51\"}");
  EXPECT_NE(access_log_line("unix:/run/x\"y", "/a/b", std::nullopt, stats).find("\"peer\":\"unix:/run/x\\\"y\""),
            std::string::npos);
  EXPECT_NE(access_log_line("p", "/a/b", std::nullopt, stats).find(",\"user_agent\":null}"), std::string::npos);
}

TEST(AccessLogLine, TimeHasSixFractionDigits) {
  CallStats stats;
  stats.start = std::chrono::system_clock::time_point(std::chrono::microseconds(999'999));
  EXPECT_EQ(access_log_line("p", "/a/b", std::nullopt, stats).substr(0, 38),
            "{\"time\":\"1970-01-01T00:00:00.999999Z\",");
  stats.start = std::chrono::system_clock::time_point(std::chrono::microseconds(1'000'005));
  EXPECT_EQ(access_log_line("p", "/a/b", std::nullopt, stats).substr(0, 38),
            "{\"time\":\"1970-01-01T00:00:01.000005Z\",");
}

// The message of the std::invalid_argument that constructing a Server throws, or "".
std::string rejection(const AccessLogOptions& log) {
  ServerOptions options;
  options.shards = 1;
  options.access_log = log;
  try {
    Server server(options);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(AccessLogOptions, OffByDefaultAndAnyFdIsAcceptedWhileOff) {
  EXPECT_FALSE(ServerOptions{}.access_log.enabled);
  EXPECT_EQ(ServerOptions{}.access_log.fd, 2);
  EXPECT_EQ(rejection({.enabled = false, .fd = -1}), "");
}

TEST(AccessLogOptions, EnabledNeedsAnOpenFdOrASink) {
  EXPECT_EQ(rejection({.enabled = true}), "");  // stderr
  std::string why = rejection({.enabled = true, .fd = -1});
  EXPECT_NE(why.find("ServerOptions::access_log.fd is -1"), std::string::npos) << why;
  int fd = ::open("/dev/null", O_WRONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(rejection({.enabled = true, .fd = fd}), "");
  ::close(fd);
  why = rejection({.enabled = true, .fd = fd});  // closed now
  EXPECT_NE(why.find("ServerOptions::access_log.fd is " + std::to_string(fd)), std::string::npos) << why;
  EXPECT_NE(why.find("open"), std::string::npos) << why;
  EXPECT_EQ(rejection({.enabled = true, .fd = -1, .sink = [](std::string_view) {}}), "");
}

}  // namespace
}  // namespace uringrpc::server
