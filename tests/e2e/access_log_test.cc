// The access log (ServerOptions::access_log) with the real gRPC C++ client: one line per
// call, each a JSON object (parsed here with protobuf's JSON parser, which is strict) with
// the call's fields; written to a file descriptor or handed to a callback; nothing when off.
#include <fcntl.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using google::protobuf::Struct;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::StatusCode;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::unary_call;

Struct parse_json(const std::string& line) {
  Struct s;
  auto st = google::protobuf::util::JsonStringToMessage(line, &s);
  EXPECT_TRUE(st.ok()) << "not JSON: " << line << " (" << st.ToString() << ")";
  return s;
}

const google::protobuf::Value& field(const Struct& s, const std::string& name) {
  static const google::protobuf::Value missing;
  auto it = s.fields().find(name);
  EXPECT_NE(it, s.fields().end()) << "no field " << name;
  return it == s.fields().end() ? missing : it->second;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

// A temporary file, opened O_APPEND as a log file would be.
struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    char name[] = "/tmp/uringrpc-access-log-XXXXXX";
    fd = mkstemp(name);
    path = name;
    fcntl(fd, F_SETFL, O_APPEND);
  }
  ~TempFile() {
    close(fd);
    unlink(path.c_str());
  }
  std::string contents() const {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
};

std::unique_ptr<uringrpc::Server> make_server(uringrpc::ServerOptions options, int* port) {
  auto server = std::make_unique<uringrpc::Server>(std::move(options));
  server->add_method("/e2e.Log/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> { co_return req; }));
  server->add_method("/e2e.Log/Deny", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                       ctx.abort(StatusCode::PERMISSION_DENIED, "no \"quotes\" for you\n");
                     }));
  *port = server->add_insecure_port("127.0.0.1:0");
  server->start();
  return server;
}

TEST(AccessLog, WritesOneJsonLinePerCallToTheFileDescriptor) {
  TempFile file;
  uringrpc::ServerOptions options{.shards = 2};
  options.access_log.enabled = true;
  options.access_log.fd = file.fd;
  int port;
  auto server = make_server(options, &port);
  auto channel = make_channel("127.0.0.1:" + std::to_string(port));
  CallResult ok = unary_call(channel, "/e2e.Log/Echo", std::string(20, 'a'));
  ASSERT_TRUE(ok.ok()) << describe(ok);
  CallResult denied = unary_call(channel, "/e2e.Log/Deny", "b");
  EXPECT_EQ(denied.code, grpc::StatusCode::PERMISSION_DENIED) << describe(denied);
  CallResult missing = unary_call(channel, "/e2e.Log/Nope", "c");
  EXPECT_EQ(missing.code, grpc::StatusCode::UNIMPLEMENTED) << describe(missing);
  ASSERT_TRUE(wait_until([&] { return lines_of(file.contents()).size() >= 2; }));
  server->stop();

  auto lines = lines_of(file.contents());
  // The unknown method never became a call: no handler, no interceptor, no line.
  ASSERT_EQ(lines.size(), 2u) << file.contents();
  std::sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    return a.find("Echo") != std::string::npos && b.find("Echo") == std::string::npos;
  });
  Struct echo = parse_json(lines[0]);
  EXPECT_EQ(field(echo, "method").string_value(), "/e2e.Log/Echo");
  EXPECT_EQ(field(echo, "code").string_value(), "OK");
  EXPECT_EQ(field(echo, "grpc_code").number_value(), 0);
  EXPECT_EQ(field(echo, "bytes_in").number_value(), 25);
  EXPECT_EQ(field(echo, "bytes_out").number_value(), 25);
  EXPECT_EQ(field(echo, "messages_in").number_value(), 1);
  EXPECT_EQ(field(echo, "messages_out").number_value(), 1);
  EXPECT_GE(field(echo, "duration_us").number_value(), 0);
  EXPECT_LT(field(echo, "duration_us").number_value(), 4e6);
  EXPECT_EQ(field(echo, "peer").string_value().rfind("ipv4:127.0.0.1:", 0), 0u) << lines[0];
  EXPECT_NE(field(echo, "user_agent").string_value().find("grpc-c++"), std::string::npos) << lines[0];
  const std::string time = field(echo, "time").string_value();
  ASSERT_EQ(time.size(), 27u) << time;  // 2026-12-05T11:22:46.123456Z
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time.back(), 'Z');

  Struct deny = parse_json(lines[1]);
  EXPECT_EQ(field(deny, "method").string_value(), "/e2e.Log/Deny");
  EXPECT_EQ(field(deny, "code").string_value(), "PERMISSION_DENIED");
  EXPECT_EQ(field(deny, "grpc_code").number_value(), 7);
  EXPECT_EQ(field(deny, "messages_out").number_value(), 0);
}

// A user agent with characters JSON must escape reaches the line escaped, and the line parses.
TEST(AccessLog, EscapesWhatTheClientSentAndHandsLinesToTheSink) {
  std::mutex mu;
  std::vector<std::string> lines;
  uringrpc::ServerOptions options{.shards = 1};
  options.access_log.enabled = true;
  options.access_log.sink = [&](std::string_view line) {
    std::lock_guard<std::mutex> l(mu);
    lines.emplace_back(line);
  };
  int port;
  auto server = make_server(options, &port);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetUserAgentPrefix("evil\"agent\\{\"x\":1}");
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
  CallResult r = unary_call(channel, "/e2e.Log/Echo", "hi");
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard<std::mutex> l(mu);
    return !lines.empty();
  }));
  server->stop();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
  Struct s = parse_json(lines[0]);
  EXPECT_EQ(field(s, "user_agent").string_value().rfind("evil\"agent\\{\"x\":1}", 0), 0u) << lines[0];
  EXPECT_EQ(field(s, "code").string_value(), "OK");
}

TEST(AccessLog, WritesNothingWhenOff) {
  TempFile file;
  std::atomic<int> sink_calls{0};
  uringrpc::ServerOptions options{.shards = 1};
  options.access_log.fd = file.fd;  // configured, but not enabled
  options.access_log.sink = [&](std::string_view) { sink_calls.fetch_add(1); };
  int port;
  auto server = make_server(options, &port);
  auto channel = make_channel("127.0.0.1:" + std::to_string(port));
  for (int i = 0; i < 5; ++i) {
    CallResult r = unary_call(channel, "/e2e.Log/Echo", "x");
    ASSERT_TRUE(r.ok()) << describe(r);
  }
  server->stop();
  EXPECT_EQ(file.contents(), "");
  EXPECT_EQ(sink_calls.load(), 0);
}

}  // namespace
