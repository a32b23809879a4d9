// The limits http2::Session holds a peer to, driven without a socket: hand-built frames
// (or a real nghttp2 client session) in, the server's frames out and decoded by nghttp2,
// time from a TimerWheel the test advances. Each test names the limit and its answer.
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "../common/h2_frames.h"
#include "../common/memory_transport.h"
#include "http2/session.h"
#include "server/layer_options.h"

namespace uringrpc::http2 {
namespace {

using testing::MemoryTransport;
using namespace testing::h2;

// The server's defaults (ServerOptions{}); each test changes the limit it walks.
SessionSettings defaults() { return server::session_settings(ServerOptions{}); }

struct Listener final : StreamListener {
  void on_request(Stream& s, bool) noexcept override {
    streams.push_back(&s);
    s.upper = this;
  }
  void on_request_data(Stream&, const Bytes&) noexcept override {}
  void on_request_end(Stream&) noexcept override {}
  void on_stream_closed(Stream& s, uint32_t) noexcept override { std::erase(streams, &s); }
  void on_session_closed() noexcept override {}
  std::vector<Stream*> streams;
};

std::string request_block(std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string b = testing::h2::request_block("/a.B/C", "x");
  if (!extra_name.empty()) b += literal(extra_name, extra_value);
  return b;
}

const std::string kPreface = client_hello();

// What came back from the server: frames parsed by hand, header blocks decoded with
// nghttp2's HPACK inflater (a client session would reject replies to raw requests).
struct Observer {
  nghttp2_hd_inflater* inflater = nullptr;
  std::optional<uint32_t> goaway_error;
  std::string goaway_debug;
  int pings = 0;
  int ping_acks = 0;
  std::vector<std::pair<uint32_t, uint32_t>> resets;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string data;
  bool data_ended = false;
  std::optional<uint32_t> max_concurrent_streams;

  Observer() { nghttp2_hd_inflate_new(&inflater); }
  ~Observer() { nghttp2_hd_inflate_del(inflater); }

  void input(const transport::OutputQueue& q) {
    std::string b;
    q.copy_to(b);
    std::string_view rest = b;
    Frame f;
    while (size_t n = parse_frame(rest, f)) {
      rest.remove_prefix(n);
      const std::string& payload = f.payload;
      if (f.type == NGHTTP2_GOAWAY) {
        goaway_error = be32(payload, 4);
        goaway_debug = payload.substr(8);
      } else if (f.type == NGHTTP2_PING) {
        ++(f.flags & NGHTTP2_FLAG_ACK ? ping_acks : pings);
      } else if (f.type == NGHTTP2_RST_STREAM) {
        resets.emplace_back(f.stream, be32(payload, 0));
      } else if (f.type == NGHTTP2_SETTINGS && !(f.flags & NGHTTP2_FLAG_ACK)) {
        for (size_t i = 0; i + 6 <= payload.size(); i += 6) {
          uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(payload[i]) << 8) | static_cast<uint8_t>(payload[i + 1]));
          if (id == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) max_concurrent_streams = be32(payload, i + 2);
        }
      } else if (f.type == NGHTTP2_DATA) {
        data += payload;
        if (f.flags & NGHTTP2_FLAG_END_STREAM) data_ended = true;
      } else if (f.type == NGHTTP2_HEADERS) {
        inflate(payload);
      }
    }
    ASSERT_TRUE(rest.empty()) << "truncated frame";
  }
  void inflate(const std::string& block) {
    auto* in = reinterpret_cast<const uint8_t*>(block.data());
    size_t left = block.size();
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      ssize_t n = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, in, left, 1);
      ASSERT_GE(n, 0) << "bad HPACK from the server";
      in += n;
      left -= static_cast<size_t>(n);
      if (flags & NGHTTP2_HD_INFLATE_EMIT) {
        headers.emplace_back(std::string(reinterpret_cast<char*>(nv.name), nv.namelen),
                             std::string(reinterpret_cast<char*>(nv.value), nv.valuelen));
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater);
        return;
      }
      if (n == 0 && left == 0) return;
    }
  }
  std::optional<std::string> header(std::string_view name) const {
    for (auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
};

struct Harness {
  explicit Harness(SessionSettings s = defaults()) : settings(s), server(transport, settings, listener, &wheel) {}
  // Feeds raw client bytes; returns what Session::on_bytes said (false: closing).
  bool send(const std::string& bytes) { return server.on_bytes(Bytes(bytes)); }
  // Everything the server has to say, decoded by the observer.
  void drain() {
    transport::OutputQueue out;
    server.produce_output(out, 1u << 20);
    observer.input(out);
  }
  void at(uint64_t ms) { wheel.advance(ms); }

  loop::TimerWheel wheel{0};
  MemoryTransport transport;
  Listener listener;
  SessionSettings settings;
  Session server;
  Observer observer;
};

TEST(Http2Limits, ThePrefaceAndFirstSettingsCompleteTheHandshake) {
  Harness h;
  EXPECT_FALSE(h.transport.handshake_done);
  ASSERT_TRUE(h.send(kPreface.substr(0, 10)));
  EXPECT_FALSE(h.transport.handshake_done) << "half a preface is not a handshake";
  ASSERT_TRUE(h.send(kPreface.substr(10)));
  EXPECT_TRUE(h.transport.handshake_done);
}

TEST(Http2Limits, AdvertisesTheConfiguredStreamLimitAndSurvivesAClientOvershootingIt) {
  SessionSettings s = defaults();
  s.max_concurrent_streams = 3;
  Harness h(s);
  h.drain();
  EXPECT_EQ(h.observer.max_concurrent_streams, 3u);
  std::string bytes = kPreface + frame(kSettings, 0x1, 0, "");  // ACK: the limit now binds
  for (uint32_t id = 1; id <= 9; id += 2) bytes += frame(kHeaders, kEndHeaders, id, request_block());
  ASSERT_TRUE(h.send(bytes)) << "a stream over the limit must not be a connection error";
  h.drain();
  EXPECT_FALSE(h.observer.goaway_error);
  EXPECT_EQ(h.listener.streams.size(), 3u);
  ASSERT_EQ(h.observer.resets.size(), 2u);
  EXPECT_EQ(h.observer.resets[0], std::make_pair(7u, uint32_t{NGHTTP2_REFUSED_STREAM}));
  EXPECT_EQ(h.observer.resets[1], std::make_pair(9u, uint32_t{NGHTTP2_REFUSED_STREAM}));
}

TEST(Http2Limits, HeaderListOverTheLimitIsFlaggedAndItsFieldsAreNotStored) {
  SessionSettings s = defaults();
  s.max_header_list_bytes = 1024;
  Harness h(s);
  std::string block = request_block();
  for (int i = 0; i < 20; ++i) block += literal("x-filler-" + std::to_string(i), std::string(100, 'v'));
  ASSERT_TRUE(h.send(kPreface + frame(kHeaders, kEndHeaders | kEndStream, 1, block)));
  ASSERT_EQ(h.listener.streams.size(), 1u);
  Stream& st = *h.listener.streams[0];
  EXPECT_TRUE(st.headers_too_large);
  EXPECT_GT(st.header_bytes, 1024u);
  size_t stored = 0;
  for (const RawField& f : st.head.metadata) stored += f.name().size() + f.value().size() + 32;
  EXPECT_LE(stored, 1024u) << "fields past the limit were copied";
}

TEST(Http2Limits, HeaderListWithinTheLimitIsKept) {
  Harness h;
  ASSERT_TRUE(h.send(kPreface + frame(kHeaders, kEndHeaders | kEndStream, 1, request_block("x-a", "b"))));
  ASSERT_EQ(h.listener.streams.size(), 1u);
  EXPECT_FALSE(h.listener.streams[0]->headers_too_large);
  ASSERT_EQ(h.listener.streams[0]->head.metadata.size(), 1u);
}

TEST(Http2Limits, PingsFasterThanAllowedGetGoawayTooManyPingsAfterTheStrikes) {
  SessionSettings s = defaults();
  s.max_ping_strikes = 2;
  s.min_ping_interval_idle_ms = 1000;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface));
  const std::string ping = frame(kPing, 0, 0, "12345678");
  ASSERT_TRUE(h.send(ping));  // the first ping is never a strike
  h.at(10);
  ASSERT_TRUE(h.send(ping));  // strike 1
  h.at(20);
  ASSERT_TRUE(h.send(ping));  // strike 2
  h.drain();
  EXPECT_FALSE(h.observer.goaway_error);
  h.at(30);
  EXPECT_FALSE(h.send(ping));  // strike 3: over the limit
  h.drain();
  ASSERT_TRUE(h.observer.goaway_error);
  EXPECT_EQ(*h.observer.goaway_error, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_EQ(h.observer.goaway_debug, "too_many_pings");
  EXPECT_TRUE(h.transport.closing);
}

TEST(Http2Limits, PingsSpacedByTheMinimumIntervalAreNeverStrikes) {
  SessionSettings s = defaults();
  s.max_ping_strikes = 1;
  s.min_ping_interval_idle_ms = 1000;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface));
  for (uint64_t t = 0; t <= 10000; t += 1000) {
    h.at(t);
    ASSERT_TRUE(h.send(frame(kPing, 0, 0, "12345678"))) << "at " << t << " ms";
  }
  h.drain();
  EXPECT_FALSE(h.observer.goaway_error);
}

TEST(Http2Limits, SendingAResponseForgivesPingStrikes) {
  SessionSettings s = defaults();
  s.max_ping_strikes = 1;
  s.min_ping_interval_ms = 1000;
  s.min_ping_interval_idle_ms = 1000;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface + frame(kHeaders, kEndHeaders | kEndStream, 1, request_block())));
  const std::string ping = frame(kPing, 0, 0, "12345678");
  ASSERT_TRUE(h.send(ping));
  ASSERT_TRUE(h.send(ping));  // strike 1 of 1
  ASSERT_EQ(h.listener.streams.size(), 1u);
  h.server.submit_headers(*h.listener.streams[0], {{":status", "200"}}, nullptr);
  h.drain();  // the response goes out: strikes forgiven
  ASSERT_TRUE(h.send(ping));
  EXPECT_TRUE(h.send(ping)) << "without forgiveness this is strike 2 of 1";
  h.drain();
  EXPECT_FALSE(h.observer.goaway_error);
}

TEST(Http2Limits, TooManyEmptyDataFramesInARowGetGoawayEnhanceYourCalm) {
  SessionSettings s = defaults();
  s.max_empty_frames = 10;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface + frame(kHeaders, kEndHeaders, 1, request_block())));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(h.send(frame(kData, 0, 1, ""))) << "empty frame " << i + 1;
  EXPECT_FALSE(h.send(frame(kData, 0, 1, "")));
  h.drain();
  ASSERT_TRUE(h.observer.goaway_error);
  EXPECT_EQ(*h.observer.goaway_error, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_EQ(h.observer.goaway_debug, "too_many_empty_frames");
}

TEST(Http2Limits, AFrameWithPayloadEndsARunOfEmptyFrames) {
  SessionSettings s = defaults();
  s.max_empty_frames = 3;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface + frame(kHeaders, kEndHeaders, 1, request_block())));
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(h.send(frame(kData, 0, 1, "")));
    ASSERT_TRUE(h.send(frame(kData, 0, 1, std::string("\0\0\0\0\0", 5))));
  }
  h.drain();
  EXPECT_FALSE(h.observer.goaway_error);
}

TEST(Http2Limits, ResetsThePeerMakesUsSendDrainTheBucketThenGoaway) {
  SessionSettings s = defaults();
  s.reset_burst = 20;
  s.reset_refill_per_second = 1;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface));
  // A request with an uppercase header name is malformed (RFC 9113 8.2.1): a stream error,
  // answered with RST_STREAM PROTOCOL_ERROR, the kind of frame MadeYouReset sends.
  bool alive = true;
  for (uint32_t id = 1; id < 2 * 40 && alive; id += 2) {
    alive = h.send(frame(kHeaders, kEndHeaders | kEndStream, id, request_block("X-Bad", "1")));
    h.drain();
  }
  ASSERT_TRUE(h.observer.goaway_error) << "no GOAWAY after " << h.observer.resets.size() << " resets";
  EXPECT_EQ(*h.observer.goaway_error, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_EQ(h.observer.goaway_debug, "too_many_resets");
  EXPECT_EQ(h.observer.resets.size(), 20u) << "the burst is exact: the 21st reset is the GOAWAY";
}

TEST(Http2Limits, TheResetBucketRefillsOverTime) {
  SessionSettings s = defaults();
  s.reset_burst = 5;
  s.reset_refill_per_second = 10;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface));
  uint64_t now = 0;
  for (uint32_t id = 1; id < 2 * 30; id += 2) {
    now += 200;  // two tokens back between resets
    h.at(now);
    ASSERT_TRUE(h.send(frame(kHeaders, kEndHeaders | kEndStream, id, request_block("X-Bad", "1"))));
    h.drain();
  }
  EXPECT_FALSE(h.observer.goaway_error);
}

TEST(Http2Limits, OutputThePeerDoesNotReadPausesReadingUntilItDrains) {
  SessionSettings s = defaults();
  s.max_queued_output_frames = 5;
  s.max_ping_strikes = 0;
  Harness h(s);
  std::string pings;
  for (int i = 0; i < 10; ++i) pings += frame(kPing, 0, 0, "12345678");
  ASSERT_TRUE(h.send(kPreface + pings));
  EXPECT_TRUE(h.transport.paused) << "ten ACKs queued, limit five";
  h.drain();
  EXPECT_FALSE(h.transport.paused);
}

TEST(Http2Limits, KeepalivePingsASilentPeerAndClosesItWithoutAnAck) {
  SessionSettings s = defaults();
  s.keepalive_time_ms = 1000;
  s.keepalive_timeout_ms = 100;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface));
  h.drain();
  h.at(999);
  h.drain();
  EXPECT_EQ(h.observer.pings, 0);
  h.at(1000);
  h.drain();
  EXPECT_EQ(h.observer.pings, 1);
  h.at(1099);
  EXPECT_FALSE(h.transport.aborted);
  h.at(1100);
  EXPECT_TRUE(h.transport.aborted) << "no ACK within the timeout";
}

TEST(Http2Limits, KeepaliveAckedKeepsTheConnection) {
  SessionSettings s = defaults();
  s.keepalive_time_ms = 1000;
  s.keepalive_timeout_ms = 100;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface));
  for (int round = 1; round <= 3; ++round) {
    uint64_t t = static_cast<uint64_t>(round) * 1050;
    h.at(t - 50);
    h.drain();
    ASSERT_EQ(h.observer.pings, round);
    h.at(t);
    ASSERT_TRUE(h.send(frame(kPing, 0x1, 0, "urpckeep")));  // the ACK
  }
  h.at(3150 + 999);
  EXPECT_FALSE(h.transport.aborted);
  EXPECT_EQ(h.observer.pings, 3);
}

TEST(Http2Limits, ReadingResetsTheKeepaliveClock) {
  SessionSettings s = defaults();
  s.keepalive_time_ms = 1000;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface));
  h.at(900);
  ASSERT_TRUE(h.send(frame(kSettings, 0x1, 0, "")));
  h.at(1500);
  h.drain();
  EXPECT_EQ(h.observer.pings, 0) << "the peer spoke 600 ms ago";
  h.at(1900);
  h.drain();
  EXPECT_EQ(h.observer.pings, 1);
}

TEST(Http2Limits, CannedResponseCarriesItsBodyAndEndsTheStreamWithoutTrailers) {
  Harness h;
  ASSERT_TRUE(h.send(kPreface + frame(kHeaders, kEndHeaders | kEndStream, 1, request_block())));
  ASSERT_EQ(h.listener.streams.size(), 1u);
  h.server.submit_canned_response(*h.listener.streams[0], {{":status", "405"}, {"content-type", "text/plain"}},
                                  "use POST\n");
  h.drain();
  EXPECT_EQ(h.observer.header(":status"), "405");
  EXPECT_EQ(h.observer.data, "use POST\n");
  EXPECT_TRUE(h.observer.data_ended);
}

std::string settings_frame(uint16_t id, uint32_t value) {
  std::string p;
  p.push_back(static_cast<char>(id >> 8));
  p.push_back(static_cast<char>(id));
  for (int shift : {24, 16, 8, 0}) p.push_back(static_cast<char>(value >> shift));
  return frame(kSettings, 0, 0, p);
}

std::string u32(uint32_t v) {
  std::string p;
  for (int shift : {24, 16, 8, 0}) p.push_back(static_cast<char>(v >> shift));
  return p;
}

std::string get_block() {
  return literal(":method", "GET") + literal(":scheme", "http") + literal(":path", "/") + literal(":authority", "x");
}

// Answers every request with a canned 405 (what the rpc layer does for GET /).
void answer_all_with_405(Harness& h) {
  for (Stream* st : h.listener.streams) {
    if (st->body) continue;
    h.server.submit_canned_response(*st, {{":status", "405"}, {"content-type", "text/plain"}}, "use POST\n");
  }
}

// Defect: streams that never became calls were not counted. With the client's window at
// 0 a 405 cannot finish, so each such stream stays open: the 4th of a limit of 3 is
// refused, and memory stays bounded by the limit.
TEST(Http2Limits, StreamsHeldOpenByAnAnswerTheClientCannotReadCountAgainstTheLimit) {
  SessionSettings s = defaults();
  s.max_concurrent_streams = 3;
  Harness h(s);
  ASSERT_TRUE(h.send(kPreface.substr(0, kPreface.size() - 9) + settings_frame(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0)));
  for (uint32_t id = 1; id <= 3; id += 2) {
    ASSERT_TRUE(h.send(frame(kHeaders, kEndHeaders | kEndStream, id, get_block())));
    answer_all_with_405(h);
    h.drain();
  }
  // The 3rd stream is the last one allowed; the 4th and the 100th are refused alone.
  std::string more;
  for (uint32_t id = 5; id <= 199; id += 2) more += frame(kHeaders, kEndHeaders | kEndStream, id, get_block());
  ASSERT_TRUE(h.send(more));
  answer_all_with_405(h);
  h.drain();
  EXPECT_EQ(h.listener.streams.size(), 3u);
  EXPECT_EQ(h.server.open_streams(), 3u);
  ASSERT_EQ(h.observer.resets.size(), 97u);
  EXPECT_EQ(h.observer.resets.front(), std::make_pair(7u, uint32_t{NGHTTP2_REFUSED_STREAM}));
  EXPECT_FALSE(h.observer.goaway_error);
  EXPECT_TRUE(h.observer.data.empty()) << "the window is 0";
  // The client opens its windows: the answers finish, and new streams are admitted again.
  std::string open_windows = frame(kWindowUpdate, 0, 0, u32(1000));
  for (uint32_t id = 1; id <= 5; id += 2) open_windows += frame(kWindowUpdate, 0, id, u32(1000));
  ASSERT_TRUE(h.send(open_windows));
  h.drain();
  EXPECT_EQ(h.observer.data, "use POST\nuse POST\nuse POST\n");
  EXPECT_EQ(h.server.open_streams(), 0u);
  ASSERT_TRUE(h.send(frame(kHeaders, kEndHeaders | kEndStream, 201, get_block())));
  EXPECT_EQ(h.listener.streams.size(), 1u);
}

// Defect: a stream closed by a complete non-gRPC answer (DATA with END_STREAM) was
// recorded as if we had reset it, so a later frame on it got nothing. A client that
// ended its request may send nothing more on it (RFC 9113 5.1), in the same read as the
// request or after the answer.
TEST(Http2Limits, FramesAfterTheClientEndedAStreamAnsweredWith405AreAConnectionError) {
  for (bool same_read : {false, true}) {
    SCOPED_TRACE(same_read);
    Harness h;
    std::string request = kPreface + frame(kHeaders, kEndHeaders | kEndStream, 1, get_block());
    std::string late = frame(kData, 0, 1, "late");
    if (same_read) {
      h.send(request + late);
    } else {
      ASSERT_TRUE(h.send(request));
      answer_all_with_405(h);
      h.drain();
      ASSERT_TRUE(h.observer.data_ended);
      EXPECT_FALSE(h.send(late));
    }
    h.drain();
    ASSERT_TRUE(h.observer.goaway_error);
    EXPECT_EQ(*h.observer.goaway_error, static_cast<uint32_t>(NGHTTP2_STREAM_CLOSED));
  }
}

// A non-gRPC request whose body is still coming gets its whole answer, then RST_STREAM
// NO_ERROR (as after gRPC trailers); what the client had in flight is then ignored.
TEST(Http2Limits, AnAnswerBeforeTheRequestBodyEndsIsFollowedByResetNoErrorAndLateDataIsIgnored) {
  Harness h;
  ASSERT_TRUE(h.send(kPreface + frame(kHeaders, kEndHeaders, 1, get_block())));
  answer_all_with_405(h);
  h.drain();
  ASSERT_TRUE(h.observer.data_ended);
  ASSERT_EQ(h.observer.resets.size(), 1u);
  EXPECT_EQ(h.observer.resets[0], std::make_pair(1u, uint32_t{NGHTTP2_NO_ERROR}));
  EXPECT_TRUE(h.send(frame(kData, kEndStream, 1, "in flight")));
  h.drain();
  EXPECT_FALSE(h.observer.goaway_error);
  EXPECT_EQ(h.observer.resets.size(), 1u);
}

// Defect: the induced-reset budget was charged as resets went out, after the whole read,
// so a batch overshot it. The 1,000th reset passes, the 1,001st request gets the GOAWAY
// instead of a reset, and nothing after it in the same read is answered or dispatched.
TEST(Http2Limits, TheRequestThatEmptiesTheResetBudgetGetsTheGoawayAndNothingAfterItIsRead) {
  SessionSettings s = defaults();
  s.reset_burst = 1000;
  s.max_concurrent_streams = 5000;
  Harness h(s);
  std::string bytes = kPreface;
  uint32_t id = 1;
  for (int i = 0; i < 1001; ++i, id += 2) {
    // Alternately missing :path, and a content-length with no body (RFC 9113 8.1.1).
    std::string block = i % 2 ? literal(":method", "POST") + literal(":scheme", "http") + literal(":authority", "x")
                              : request_block("content-length", "5");
    bytes += frame(kHeaders, kEndHeaders | kEndStream, id, block);
  }
  bytes += frame(kPing, 0, 0, "12345678");
  bytes += frame(kHeaders, kEndHeaders | kEndStream, id, request_block());
  EXPECT_FALSE(h.send(bytes));
  h.drain();
  EXPECT_EQ(h.observer.resets.size(), 1000u);
  ASSERT_TRUE(h.observer.goaway_error);
  EXPECT_EQ(*h.observer.goaway_error, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_EQ(h.observer.goaway_debug, "too_many_resets");
  EXPECT_EQ(h.observer.ping_acks, 0);
  EXPECT_TRUE(h.listener.streams.empty()) << "the request after the GOAWAY was dispatched";
}

// nghttp2's own stream errors (DATA over the stream's window, a WINDOW_UPDATE that
// overflows it) cost one token each, no more and no less: the 10th passes, the 11th is
// the GOAWAY, in one read.
TEST(Http2Limits, ResetsNghttp2SendsOnItsOwnAreChargedOnceEachAtTheirFrame) {
  for (int total : {10, 11}) {
    SCOPED_TRACE(total);
    SessionSettings s = defaults();
    s.reset_burst = 10;
    s.stream_window_bytes = 16;
    Harness h(s);
    std::string bytes = kPreface + frame(kSettings, 0x1, 0, "");  // ACK: the window of 16 binds
    for (uint32_t i = 0, id = 1; i < static_cast<uint32_t>(total); ++i, id += 2) {
      bytes += frame(kHeaders, kEndHeaders, id, request_block());
      if (i % 2) {
        bytes += frame(kData, 0, id, std::string(17, 'x'));  // one byte over the window
      } else {
        bytes += frame(kWindowUpdate, 0, id, u32(0x7fffffff));  // 16 + 2^31-1 overflows
      }
    }
    bytes += frame(kPing, 0, 0, "12345678");
    EXPECT_EQ(h.send(bytes), total == 10);
    h.drain();
    if (total == 10) {
      EXPECT_FALSE(h.observer.goaway_error);
      EXPECT_EQ(h.observer.resets.size(), 10u);
      EXPECT_EQ(h.observer.ping_acks, 1);
    } else {
      ASSERT_TRUE(h.observer.goaway_error);
      EXPECT_EQ(h.observer.goaway_debug, "too_many_resets");
      EXPECT_EQ(h.observer.ping_acks, 0);
    }
  }
}

TEST(Http2Limits, TheClientResetThatEmptiesItsBudgetGetsTheGoawayAndNothingAfterItIsRead) {
  SessionSettings s = defaults();
  s.reset_burst = 1000;
  s.max_concurrent_streams = 5000;
  Harness h(s);
  std::string bytes = kPreface;
  uint32_t id = 1;
  for (int i = 0; i < 1001; ++i, id += 2) {
    bytes += frame(kHeaders, kEndHeaders, id, request_block());
    bytes += frame(kRstStream, 0, id, u32(NGHTTP2_CANCEL));
  }
  bytes += frame(kPing, 0, 0, "12345678");
  EXPECT_FALSE(h.send(bytes));
  h.drain();
  ASSERT_TRUE(h.observer.goaway_error);
  EXPECT_EQ(h.observer.goaway_debug, "too_many_resets");
  EXPECT_EQ(h.observer.ping_acks, 0);

  Harness under(s);
  bytes = kPreface;
  id = 1;
  for (int i = 0; i < 1000; ++i, id += 2) {
    bytes += frame(kHeaders, kEndHeaders, id, request_block());
    bytes += frame(kRstStream, 0, id, u32(NGHTTP2_CANCEL));
  }
  EXPECT_TRUE(under.send(bytes + frame(kPing, 0, 0, "12345678")));
  under.drain();
  EXPECT_FALSE(under.observer.goaway_error) << "the 1,000th reset is within the budget";
  EXPECT_EQ(under.observer.ping_acks, 1);
}

TEST(Http2Limits, TheEmptyFrameOverTheLimitStopsTheReadAtThatFrame) {
  SessionSettings s = defaults();
  s.max_empty_frames = 10;
  Harness h(s);
  std::string bytes = kPreface + frame(kHeaders, kEndHeaders, 1, request_block());
  for (int i = 0; i < 11; ++i) bytes += frame(kData, 0, 1, "");
  bytes += frame(kPing, 0, 0, "12345678") + frame(kHeaders, kEndHeaders | kEndStream, 3, request_block());
  EXPECT_FALSE(h.send(bytes));
  h.drain();
  EXPECT_EQ(h.observer.goaway_debug, "too_many_empty_frames");
  EXPECT_EQ(h.observer.ping_acks, 0);
  EXPECT_EQ(h.listener.streams.size(), 1u) << "stream 3 came after the GOAWAY";
}

TEST(Http2Limits, ThePingThatStrikesOutGetsTheGoawayNotAnAck) {
  SessionSettings s = defaults();
  s.max_ping_strikes = 2;
  s.min_ping_interval_idle_ms = 1000;
  Harness h(s);
  std::string bytes = kPreface;
  for (int i = 0; i < 4; ++i) bytes += frame(kPing, 0, 0, "12345678");  // ok, strike 1, strike 2, out
  bytes += frame(kHeaders, kEndHeaders | kEndStream, 1, request_block());
  EXPECT_FALSE(h.send(bytes));
  h.drain();
  EXPECT_EQ(h.observer.goaway_debug, "too_many_pings");
  EXPECT_EQ(h.observer.ping_acks, 3);
  EXPECT_TRUE(h.listener.streams.empty());
}

}  // namespace
}  // namespace uringrpc::http2

namespace uringrpc::http2 {
namespace {

// HPACK "literal header field with incremental indexing, new name" (RFC 7541 6.2.1):
// the field goes into the server's dynamic table, and later requests can name it by index.
std::string indexed_literal(std::string_view name, std::string_view value) {
  std::string out(1, '\x40');
  out.push_back(static_cast<char>(name.size()));
  out.append(name);
  out.push_back(static_cast<char>(value.size()));
  out.append(value);
  return out;
}
// HPACK "indexed header field" for dynamic-table entry i (0: the newest; index 62 + i).
std::string indexed(unsigned i) { return std::string(1, static_cast<char>(0x80 | (62 + i))); }

// A field from the HPACK table comes in the same buffers each time, and the session
// remembers what the checks found in their bytes (FieldMemo): a valid field named by index
// stays valid, a new entry with the same name but a bad value is judged afresh, and naming
// that bad entry by index is as malformed as sending it.
TEST(Http2Limits, FieldsFromTheHpackTableAreJudgedByTheirOwnBytesEveryTime) {
  Harness h;
  ASSERT_TRUE(h.send(kPreface));
  auto request = [&](uint32_t id, const std::string& extra) {
    return h.send(frame(kHeaders, kEndHeaders | kEndStream, id, request_block() + extra));
  };
  ASSERT_TRUE(request(1, indexed_literal("x-memo", "fine")));
  ASSERT_TRUE(request(3, indexed(0)));                           // x-memo: fine, remembered
  ASSERT_TRUE(request(5, indexed_literal("x-memo", "ba\x01d")));  // a control byte
  ASSERT_TRUE(request(7, indexed(0)));                           // that same bad entry
  ASSERT_TRUE(request(9, indexed(1)));                           // the good one again
  h.drain();
  std::vector<int32_t> served;
  for (Stream* st : h.listener.streams) served.push_back(st->id);
  std::sort(served.begin(), served.end());
  EXPECT_EQ(served, (std::vector<int32_t>{1, 3, 9}));
  std::vector<std::pair<uint32_t, uint32_t>> want = {{5, NGHTTP2_PROTOCOL_ERROR}, {7, NGHTTP2_PROTOCOL_ERROR}};
  EXPECT_EQ(h.observer.resets, want);
  EXPECT_FALSE(h.observer.goaway_error);
}

}  // namespace
}  // namespace uringrpc::http2
