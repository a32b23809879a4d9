// Bad input over a raw TCP socket: HTTP/2 frames built by hand (HPACK literals without
// indexing, no Huffman), responses decoded with nghttp2's own HPACK inflater. Each case
// checks the server's answer (GOAWAY code, :status, grpc-status) and then that a real
// gRPC client on a fresh channel is still served.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../common/grpc_test_client.h"
#include "../common/gzip_bomb.h"
#include "../common/h2_frames.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::unary_call;

using namespace uringrpc::testing::h2;
const std::string kPreface(kClientPreface);

using HeaderBlock = std::vector<std::pair<std::string, std::string>>;

// What came back on one stream.
struct StreamResponse {
  std::vector<HeaderBlock> header_blocks;
  std::string data;
  bool ended = false;  // END_STREAM seen
  std::optional<uint32_t> rst;
  std::optional<uint32_t> goaway;
  bool eof = false;
  std::string decode_error;

  std::optional<std::string> header(const std::string& name) const {
    for (auto& block : header_blocks) {
      for (auto& [k, v] : block) {
        if (k == name) return v;
      }
    }
    return std::nullopt;
  }
  std::string describe() const {
    std::string s = "blocks=" + std::to_string(header_blocks.size()) + " data=" + std::to_string(data.size()) +
                    " ended=" + std::to_string(ended);
    if (rst) s += " rst=" + std::to_string(*rst);
    if (goaway) s += " goaway=" + std::to_string(*goaway);
    if (eof) s += " eof";
    if (!decode_error.empty()) s += " decode_error=" + decode_error;
    for (auto& block : header_blocks) {
      s += " [";
      for (auto& [k, v] : block) s += k + ": " + v + "; ";
      s += "]";
    }
    return s;
  }
};

// A hand-driven HTTP/2 client on a plain socket. Every read is bounded by a poll timeout.
class RawH2Client {
 public:
  explicit RawH2Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    if (connected_) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    nghttp2_hd_inflate_new(&inflater_);
  }
  ~RawH2Client() {
    close();
    nghttp2_hd_inflate_del(inflater_);
  }
  RawH2Client(const RawH2Client&) = delete;
  RawH2Client& operator=(const RawH2Client&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False when the peer is gone (EPIPE, ECONNRESET): for bad-input tests that is fine.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool send_preface() { return send(kPreface + frame(kSettings, 0, 0, "")); }
  bool send_headers(uint32_t stream, const std::string& block, bool end_stream) {
    return send(frame(kHeaders, static_cast<uint8_t>(kEndHeaders | (end_stream ? kEndStream : 0)), stream, block));
  }
  bool send_data(uint32_t stream, std::string_view data, bool end_stream) {
    return send(frame(kData, end_stream ? kEndStream : 0, stream, data));
  }

  enum class Read { kFrame, kEof, kTimeout };
  // Reads one frame; answers SETTINGS and PING so the server never waits on us.
  Read read_frame(Frame& f, Clock::time_point deadline) {
    for (;;) {
      if (size_t n = parse_frame(in_, f)) {
        in_.erase(0, n);
        if (f.type == kSettings && !(f.flags & kAck)) send(frame(kSettings, kAck, 0, ""));
        if (f.type == kPing && !(f.flags & kAck)) send(frame(kPing, kAck, 0, f.payload));
        return Read::kFrame;
      }
      if (eof_) return Read::kEof;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Read::kTimeout;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return Read::kTimeout;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;  // orderly close or reset
        continue;
      }
      in_.append(buf, static_cast<size_t>(n));
    }
  }

  struct GoawayResult {
    std::optional<uint32_t> error;  // GOAWAY's error code, if one came
    bool eof = false;               // the server closed the connection
    bool timeout = false;
    std::string debug;
  };
  // Reads frames until GOAWAY or EOF (then, after a GOAWAY, waits for the close too).
  GoawayResult read_until_goaway(std::chrono::milliseconds limit = 2s) {
    GoawayResult g;
    auto deadline = Clock::now() + limit;
    Frame f;
    for (;;) {
      Read r = read_frame(f, deadline);
      if (r == Read::kEof) {
        g.eof = true;
        return g;
      }
      if (r == Read::kTimeout) {
        g.timeout = true;
        return g;
      }
      if (f.type == kGoaway && f.payload.size() >= 8 && !g.error) {
        g.error = be32(f.payload, 4);
        g.debug = f.payload.substr(8);
      }
    }
  }

  // Reads frames until `stream` ends (END_STREAM or RST_STREAM), the connection ends, or
  // the limit passes; decodes its header blocks.
  StreamResponse read_response(uint32_t stream, std::chrono::milliseconds limit = 5s) {
    StreamResponse resp;
    auto deadline = Clock::now() + limit;
    Frame f;
    std::string pending_block;
    bool in_headers = false;
    bool pending_end = false;
    while (!resp.ended && !resp.rst) {
      Read r = read_frame(f, deadline);
      if (r == Read::kEof) {
        resp.eof = true;
        break;
      }
      if (r == Read::kTimeout) break;
      if (f.type == kGoaway && f.payload.size() >= 8) resp.goaway = be32(f.payload, 4);
      if (f.stream != stream) continue;
      if (f.type == kHeaders || (f.type == kContinuation && in_headers)) {
        std::string_view p = f.payload;
        if (f.type == kHeaders) {
          size_t pad = 0;
          if (f.flags & kPadded) {
            pad = static_cast<uint8_t>(p[0]);
            p.remove_prefix(1);
          }
          if (f.flags & kPriority) p.remove_prefix(5);
          p.remove_suffix(pad);
          pending_end = f.flags & kEndStream;
        }
        pending_block.append(p);
        in_headers = true;
        if (f.flags & kEndHeaders) {
          resp.header_blocks.push_back(inflate(pending_block, resp.decode_error));
          pending_block.clear();
          in_headers = false;
          if (pending_end) resp.ended = true;
        }
      } else if (f.type == kData) {
        std::string_view p = f.payload;
        if (f.flags & kPadded) {
          size_t pad = static_cast<uint8_t>(p[0]);
          p.remove_prefix(1);
          p.remove_suffix(pad);
        }
        resp.data.append(p);
        if (f.flags & kEndStream) resp.ended = true;
      } else if (f.type == kRstStream && f.payload.size() >= 4) {
        resp.rst = be32(f.payload, 0);
      }
    }
    return resp;
  }

 private:
  static uint32_t be32(const std::string& s, size_t at) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
  }

  HeaderBlock inflate(const std::string& block, std::string& error) {
    HeaderBlock out;
    auto* in = reinterpret_cast<const uint8_t*>(block.data());
    size_t left = block.size();
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      ssize_t n = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, 1);
      if (n < 0) {
        error = nghttp2_strerror(static_cast<int>(n));
        return out;
      }
      in += n;
      left -= static_cast<size_t>(n);
      if (flags & NGHTTP2_HD_INFLATE_EMIT) {
        out.emplace_back(std::string(reinterpret_cast<char*>(nv.name), nv.namelen),
                         std::string(reinterpret_cast<char*>(nv.value), nv.valuelen));
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater_);
        return out;
      }
      if (left == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT)) return out;
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string in_;
  nghttp2_hd_inflater* inflater_ = nullptr;
};

class RawHttp2 : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1});
    server_->add_method("/e2e.Raw/Echo", uringrpc::unary([this](Bytes req, ServerContext&) -> Task<Bytes> {
                          echo_calls_.fetch_add(1);
                          co_return req;
                        }));
    // Waits on reads forever; counts frames destroyed.
    server_->add_method("/e2e.Raw/Wait", uringrpc::bidi_streaming([this](uringrpc::Reader<Bytes>& reader,
                                                                         ServerContext&) -> Task<void> {
                          struct Guard {
                            std::atomic<int>* n;
                            ~Guard() { n->fetch_add(1); }
                          } guard{&wait_destroyed_};
                          while (auto m = co_await reader.next()) wait_reads_.fetch_add(1);
                        }));
    // Compressed responses, with the middle one of three sent uncompressed.
    server_->add_method("/e2e.Raw/Mixed", uringrpc::server_streaming([](Bytes req, ServerContext& ctx) -> Task<void> {
                          ctx.set_compression(uringrpc::Compression::kGzip);
                          co_await ctx.write(req);
                          co_await ctx.write(req, {.no_compress = true});
                          co_await ctx.write(req);
                        }));
    port_ = server_->add_insecure_port("127.0.0.1:0");
    ASSERT_GT(port_, 0);
    server_->start();
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  // A real gRPC client on a fresh channel is still served.
  void expect_server_healthy() {
    auto channel = make_channel("127.0.0.1:" + std::to_string(port_));
    CallResult r = unary_call(channel, "/e2e.Raw/Echo", "healthy?", 10s);
    EXPECT_TRUE(r.ok()) << "server unhealthy after bad input: " << describe(r);
    if (r.ok()) {
      EXPECT_EQ(r.responses.at(0), "healthy?");
    }
  }

  template <class Pred>
  static bool wait_until(Pred pred, std::chrono::milliseconds limit) {
    auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(2ms);
    }
    return pred();
  }

  std::atomic<int> echo_calls_{0};
  std::atomic<int> wait_reads_{0};
  std::atomic<int> wait_destroyed_{0};
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
};

// Positive control: the hand-built frames are a valid gRPC call.
TEST_F(RawHttp2, HandBuiltValidRequestIsServed) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Echo"), false));
  ASSERT_TRUE(c.send_data(1, grpc_message("raw hello"), true));
  StreamResponse r = c.read_response(1);
  ASSERT_TRUE(r.ended) << r.describe();
  EXPECT_EQ(r.header(":status"), "200") << r.describe();
  EXPECT_EQ(r.header("grpc-status"), "0") << r.describe();
  EXPECT_EQ(r.data, grpc_message("raw hello"));
  EXPECT_TRUE(r.decode_error.empty()) << r.decode_error;
}

TEST_F(RawHttp2, GarbageInsteadOfPrefaceGetsGoawayOrClose) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  c.send("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  auto g = c.read_until_goaway();
  EXPECT_FALSE(g.timeout) << "the server neither sent GOAWAY nor closed within 2 s";
  EXPECT_TRUE(g.error.has_value() || g.eof);
  expect_server_healthy();
}

TEST_F(RawHttp2, TruncatedPrefaceThenCloseBreaksNothing) {
  {
    RawH2Client c(port_);
    ASSERT_TRUE(c.connected());
    c.send(kPreface.substr(0, 10));
  }  // closed here
  expect_server_healthy();
}

TEST_F(RawHttp2, TruncatedPrefaceThenSilenceDoesNotBlockOthers) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  c.send(kPreface.substr(0, 10));
  expect_server_healthy();  // while that connection is still open and stuck
}

TEST_F(RawHttp2, BadHpackBlockGetsGoawayCompressionError) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  // Indexed field 62: the dynamic table is empty, so the index does not exist.
  c.send_headers(1, std::string("\xbe", 1), true);
  auto g = c.read_until_goaway();
  ASSERT_TRUE(g.error.has_value()) << "no GOAWAY (eof=" << g.eof << " timeout=" << g.timeout << ")";
  EXPECT_EQ(*g.error, kCompressionError) << "debug: " << g.debug;
  EXPECT_TRUE(g.eof) << "the connection stayed open after a connection error";
  EXPECT_EQ(echo_calls_.load(), 0);
  expect_server_healthy();
}

TEST_F(RawHttp2, DataOnStreamZeroGetsGoawayProtocolError) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  c.send_data(0, "abc", false);
  auto g = c.read_until_goaway();
  ASSERT_TRUE(g.error.has_value()) << "no GOAWAY (eof=" << g.eof << " timeout=" << g.timeout << ")";
  EXPECT_EQ(*g.error, kProtocolError) << "debug: " << g.debug;
  EXPECT_TRUE(g.eof) << "the connection stayed open after a connection error";
  expect_server_healthy();
}

TEST_F(RawHttp2, TextPlainContentTypeGets415) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Echo", "localhost", "text/plain"), false));
  c.send_data(1, grpc_message("x"), true);
  StreamResponse r = c.read_response(1);
  EXPECT_TRUE(r.ended || r.rst) << r.describe();
  EXPECT_EQ(r.header(":status"), "415") << r.describe();
  EXPECT_TRUE(r.decode_error.empty()) << r.decode_error;
  EXPECT_EQ(echo_calls_.load(), 0);
  expect_server_healthy();
}

TEST_F(RawHttp2, FourGiBLengthPrefixGetsResourceExhaustedAtOnce) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Echo"), false));
  // Only the prefix, no END_STREAM: the server must answer from the prefix alone.
  ASSERT_TRUE(c.send_data(1, std::string("\x00\xff\xff\xff\xff", 5), false));
  StreamResponse r = c.read_response(1);
  EXPECT_EQ(r.header("grpc-status"), "8") << r.describe();
  EXPECT_EQ(echo_calls_.load(), 0);
  // The connection itself is fine: a valid request on another stream is served.
  ASSERT_TRUE(c.send_headers(3, request_block("/e2e.Raw/Echo"), false));
  ASSERT_TRUE(c.send_data(3, grpc_message("next"), true));
  StreamResponse next = c.read_response(3);
  EXPECT_EQ(next.header("grpc-status"), "0") << next.describe();
  EXPECT_EQ(next.data, grpc_message("next"));
  expect_server_healthy();
}

TEST_F(RawHttp2, MessageFlagByteTwoGetsInternal) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Echo"), false));
  ASSERT_TRUE(c.send_data(1, grpc_message("x", 2), true));
  StreamResponse r = c.read_response(1);
  EXPECT_EQ(r.header("grpc-status"), "13") << r.describe();
  EXPECT_EQ(echo_calls_.load(), 0);
  expect_server_healthy();
}

// The gRPC messages of a response body: (compressed flag, payload) each.
std::vector<std::pair<int, std::string>> split_messages(std::string_view body) {
  std::vector<std::pair<int, std::string>> out;
  while (body.size() >= 5) {
    size_t n = be32(body, 1);
    out.emplace_back(body[0], std::string(body.substr(5, n)));
    body.remove_prefix(std::min(body.size(), 5 + n));
  }
  return out;
}

TEST_F(RawHttp2, HandlerMixesCompressedAndUncompressedMessagesWithTheirFlags) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Mixed") + literal("grpc-accept-encoding", "identity,gzip"), false));
  const std::string text(2000, 'z');
  ASSERT_TRUE(c.send_data(1, grpc_message(text), true));
  StreamResponse r = c.read_response(1);
  ASSERT_EQ(r.header("grpc-status"), "0") << r.describe();
  EXPECT_EQ(r.header("grpc-encoding"), "gzip") << r.describe();
  EXPECT_EQ(r.header("grpc-accept-encoding"), "identity,deflate,gzip") << r.describe();
  auto messages = split_messages(r.data);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].first, 1);
  EXPECT_LT(messages[0].second.size(), 100u);  // 2000 'z' gzipped
  EXPECT_EQ(messages[1].first, 0);
  EXPECT_EQ(messages[1].second, text);
  EXPECT_EQ(messages[2].first, 1);
}

TEST_F(RawHttp2, ClientWithoutAcceptEncodingGetsUncompressedResponses) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Mixed"), false));
  ASSERT_TRUE(c.send_data(1, grpc_message(std::string(2000, 'z')), true));
  StreamResponse r = c.read_response(1);
  ASSERT_EQ(r.header("grpc-status"), "0") << r.describe();
  EXPECT_FALSE(r.header("grpc-encoding")) << r.describe();
  for (auto& [flag, payload] : split_messages(r.data)) {
    EXPECT_EQ(flag, 0);
    EXPECT_EQ(payload, std::string(2000, 'z'));
  }
}

TEST_F(RawHttp2, GzipBombGetsResourceExhaustedAndTheConnectionGoesOn) {
  // 512 MiB of zeros in ~0.5 MiB of gzip: under the 4 MiB limit as sent, and within the
  // 1 MiB stream window so this client need not wait for WINDOW_UPDATEs.
  const std::string bomb = uringrpc::testing::gzip_of_zero_mebibytes(512);
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  // The server's 1 MiB window applies once its SETTINGS are acknowledged (read_frame acks).
  Frame f;
  do {
    ASSERT_EQ(c.read_frame(f, Clock::now() + 5s), RawH2Client::Read::kFrame);
  } while (f.type != kSettings || (f.flags & kAck));
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Echo") + literal("grpc-encoding", "gzip"), false));
  std::string body = grpc_message(bomb, 1);
  for (size_t at = 0; at < body.size(); at += 16384) {
    if (!c.send_data(1, std::string_view(body).substr(at, 16384), at + 16384 >= body.size())) break;
  }
  StreamResponse r = c.read_response(1);
  EXPECT_EQ(r.header("grpc-status"), "8") << r.describe();
  EXPECT_EQ(echo_calls_.load(), 0);
  ASSERT_TRUE(c.send_headers(3, request_block("/e2e.Raw/Echo"), false));
  ASSERT_TRUE(c.send_data(3, grpc_message("next"), true));
  StreamResponse next = c.read_response(3);
  EXPECT_EQ(next.header("grpc-status"), "0") << next.describe();
  expect_server_healthy();
}

TEST_F(RawHttp2, CorruptCompressedMessageGetsInternalAndOtherCallsGoOn) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  // Stream 1 stays open (a message waits in /e2e.Raw/Wait) while stream 3 fails.
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Wait"), false));
  ASSERT_TRUE(c.send_data(1, grpc_message("first"), false));
  ASSERT_TRUE(wait_until([&] { return wait_reads_.load() == 1; }, 5s));
  std::string gz = uringrpc::testing::gzip_of_zero_mebibytes(1);
  gz[gz.size() / 2] = static_cast<char>(gz[gz.size() / 2] ^ 0x55);
  ASSERT_TRUE(c.send_headers(3, request_block("/e2e.Raw/Echo") + literal("grpc-encoding", "gzip"), false));
  ASSERT_TRUE(c.send_data(3, grpc_message(gz.substr(0, gz.size() - 3), 1), true));  // corrupt and truncated
  StreamResponse r = c.read_response(3);
  EXPECT_EQ(r.header("grpc-status"), "13") << r.describe();
  EXPECT_EQ(echo_calls_.load(), 0);
  // The other call on the connection is unaffected.
  ASSERT_TRUE(c.send_data(1, grpc_message("second"), true));
  StreamResponse first = c.read_response(1);
  EXPECT_EQ(first.header("grpc-status"), "0") << first.describe();
  EXPECT_EQ(wait_reads_.load(), 2);
  expect_server_healthy();
}

TEST_F(RawHttp2, BodyEndingInsideMessagePrefixGetsInternal) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Echo"), false));
  ASSERT_TRUE(c.send_data(1, std::string("\x00\x00\x00", 3), true));  // 3 of 5 prefix bytes
  StreamResponse r = c.read_response(1);
  EXPECT_EQ(r.header("grpc-status"), "13") << r.describe();
  EXPECT_EQ(echo_calls_.load(), 0);
  expect_server_healthy();
}

TEST_F(RawHttp2, BodyEndingInsideMessagePayloadGetsInternal) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Echo"), false));
  ASSERT_TRUE(c.send_data(1, std::string("\x00\x00\x00\x00\x0a" "abc", 8), true));  // 3 of 10 bytes
  StreamResponse r = c.read_response(1);
  EXPECT_EQ(r.header("grpc-status"), "13") << r.describe();
  expect_server_healthy();
}

TEST_F(RawHttp2, PeerVanishingMidRequestBreaksNothing) {
  {
    RawH2Client c(port_);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send_preface());
    // Stream 1: a running bidi handler waiting on its next read.
    ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Wait"), false));
    ASSERT_TRUE(c.send_data(1, grpc_message("first"), false));
    // Stream 3: half a message.
    ASSERT_TRUE(c.send_headers(3, request_block("/e2e.Raw/Echo"), false));
    ASSERT_TRUE(c.send_data(3, std::string("\x00\x00\x00\x00\x10" "abc", 8), false));
    ASSERT_TRUE(wait_until([&] { return wait_reads_.load() == 1; }, 5s));
    EXPECT_EQ(wait_destroyed_.load(), 0);
  }  // the socket closes mid-request
  EXPECT_TRUE(wait_until([&] { return wait_destroyed_.load() == 1; }, 1s))
      << "the handler of a vanished peer was not destroyed";
  EXPECT_EQ(echo_calls_.load(), 0);
  expect_server_healthy();
}

TEST_F(RawHttp2, PeerResettingStreamWithRstStreamCancelsHandler) {
  RawH2Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_preface());
  ASSERT_TRUE(c.send_headers(1, request_block("/e2e.Raw/Wait"), false));
  ASSERT_TRUE(c.send_data(1, grpc_message("first"), false));
  ASSERT_TRUE(wait_until([&] { return wait_reads_.load() == 1; }, 5s));
  ASSERT_TRUE(c.send(frame(kRstStream, 0, 1, std::string("\x00\x00\x00\x08", 4))));  // CANCEL
  EXPECT_TRUE(wait_until([&] { return wait_destroyed_.load() == 1; }, 1s));
  // The connection carries on.
  ASSERT_TRUE(c.send_headers(3, request_block("/e2e.Raw/Echo"), false));
  ASSERT_TRUE(c.send_data(3, grpc_message("after rst"), true));
  StreamResponse r = c.read_response(3);
  EXPECT_EQ(r.header("grpc-status"), "0") << r.describe();
  EXPECT_EQ(r.data, grpc_message("after rst"));
}

}  // namespace
