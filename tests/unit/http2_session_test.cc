// http2::Session driven without a socket: an nghttp2 client session on one side, our
// server Session over an in-memory Transport on the other. Proves the zero-copy paths
// (request DATA handed up as slices of the received bytes, response payloads sent by
// reference) and the double-GOAWAY graceful shutdown.
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <string>
#include <vector>

#include "../common/memory_transport.h"
#include "base/page_pool.h"
#include "http2/session.h"
#include "server/layer_options.h"

namespace uringrpc::http2 {
namespace {

using testing::MemoryTransport;

struct Listener final : StreamListener {
  void on_request(Stream& s, bool) noexcept override {
    streams.push_back(&s);
    s.upper = this;  // "someone reads this stream"
  }
  void on_request_data(Stream&, const Bytes& chunk) noexcept override { chunks.push_back(chunk); }
  void on_request_end(Stream&) noexcept override { ++ends; }
  void on_stream_closed(Stream& s, uint32_t) noexcept override { std::erase(streams, &s); ++closed; }
  void on_session_closed() noexcept override {}
  std::vector<Stream*> streams;
  std::vector<Bytes> chunks;
  int ends = 0;
  int closed = 0;
};

struct Body final : ResponseBody {
  Bytes payload;
  size_t sent = 0;
  size_t body_ready(size_t max, bool* eof) noexcept override {
    size_t n = std::min(max, payload.size() - sent);
    if (sent + n == payload.size()) *eof = true;
    return n;
  }
  void body_emit(size_t n, transport::OutputQueue& out) noexcept override {
    out.append_ref(payload.slice(sent, n));
    sent += n;
  }
  void body_trailers(HeaderList& out) noexcept override { out.push_back({"grpc-status", "0"}); }
};

// The client end: a real nghttp2 client session that records what it receives.
struct Client {
  nghttp2_session* ng = nullptr;
  std::vector<int32_t> goaway_last_ids;
  int pings = 0;
  std::string data;
  std::vector<std::pair<std::string, std::string>> headers;

  Client() {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
      auto* c = static_cast<Client*>(u);
      if (f->hd.type == NGHTTP2_GOAWAY) c->goaway_last_ids.push_back(f->goaway.last_stream_id);
      if (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK)) ++c->pings;
      return 0;
    });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, uint8_t, int32_t, const uint8_t* d, size_t n, void* u) {
          static_cast<Client*>(u)->data.append(reinterpret_cast<const char*>(d), n);
          return 0;
        });
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame*, const uint8_t* n, size_t nl, const uint8_t* v, size_t vl,
                uint8_t, void* u) {
          static_cast<Client*>(u)->headers.emplace_back(std::string(reinterpret_cast<const char*>(n), nl),
                                                        std::string(reinterpret_cast<const char*>(v), vl));
          return 0;
        });
    nghttp2_session_client_new(&ng, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(ng); }

  // end_body false: the body stays open after these bytes (a streaming request).
  int32_t request(const std::string& body, bool end_body = true) {
    body_ = body;
    end_body_ = end_body;
    nghttp2_nv nva[] = {nv(":method", "POST"), nv(":scheme", "http"), nv(":path", "/a.B/C"),
                        nv(":authority", "x"), nv("content-type", "application/grpc"), nv("te", "trailers")};
    nghttp2_data_provider prd;
    prd.source.ptr = this;
    prd.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source* src, void*) -> ssize_t {
      auto* c = static_cast<Client*>(src->ptr);
      size_t n = std::min(len, c->body_.size());
      if (n == 0 && !c->end_body_) return NGHTTP2_ERR_DEFERRED;
      std::memcpy(buf, c->body_.data(), n);
      c->body_.erase(0, n);
      if (c->body_.empty() && c->end_body_) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    return nghttp2_submit_request(ng, nullptr, nva, 6, &prd, nullptr);
  }
  // Everything the client wants to send, as one owned buffer.
  Bytes output() {
    std::string out;
    const uint8_t* p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(ng, &p)) > 0) out.append(reinterpret_cast<const char*>(p), n);
    return Bytes(std::move(out));
  }
  void input(const transport::OutputQueue& q) {
    std::string bytes;
    q.copy_to(bytes);
    EXPECT_EQ(nghttp2_session_mem_recv(ng, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  static nghttp2_nv nv(const char* n, const char* v) {
    return {(uint8_t*)n, (uint8_t*)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
  }
  std::string body_;
  bool end_body_ = true;
};

struct Harness {
  MemoryTransport transport;
  Listener listener;
  SessionSettings settings = server::session_settings(ServerOptions{});
  Session server{transport, settings, listener};
  Client client;

  // One round trip: client bytes in, server bytes out to the client.
  transport::OutputQueue exchange() {
    Bytes in = client.output();
    if (!in.empty()) {
      EXPECT_TRUE(server.on_bytes(in));
    }
    transport::OutputQueue out;
    server.produce_output(out, 1u << 20);
    client.input(out);
    return out;
  }
};

TEST(Http2Session, RequestDataReachesTheListenerAsSlicesOfTheReceivedBuffer) {
  Harness h;
  h.client.request("hello, zero copy");
  Bytes in = h.client.output();
  ASSERT_TRUE(h.server.on_bytes(in));
  ASSERT_EQ(h.listener.streams.size(), 1u);
  ASSERT_EQ(h.listener.chunks.size(), 1u);
  const Bytes& chunk = h.listener.chunks[0];
  EXPECT_EQ(chunk.view(), "hello, zero copy");
  EXPECT_GE(chunk.data(), in.data());
  EXPECT_LE(chunk.data() + chunk.size(), in.data() + in.size());
  EXPECT_EQ(chunk.owner(), in.owner()) << "the chunk must share the received buffer, not copy it";
  EXPECT_EQ(h.listener.ends, 1);
}

TEST(Http2Session, ResponsePayloadGoesToTheSocketByReference) {
  Harness h;
  h.client.request("q");
  h.exchange();
  ASSERT_EQ(h.listener.streams.size(), 1u);
  Body body;
  body.payload = Bytes(std::string(10000, 'p'));
  ASSERT_TRUE(h.server.submit_headers(*h.listener.streams[0], {{":status", "200"}, {"content-type", "application/grpc"}},
                                      &body));
  transport::OutputQueue out;
  h.server.produce_output(out, 1u << 20);
  iovec iov[64];
  size_t n = out.build_iovecs(iov, 64);
  bool referenced = false;
  for (size_t i = 0; i < n; ++i) {
    if (iov[i].iov_base == body.payload.data() && iov[i].iov_len == body.payload.size()) referenced = true;
  }
  EXPECT_TRUE(referenced) << "the payload was copied into the output instead of referenced";
  h.client.input(out);
  EXPECT_EQ(h.client.data, body.payload.view());
  bool saw_status = false;
  for (auto& [k, v] : h.client.headers) saw_status |= (k == "grpc-status" && v == "0");
  EXPECT_TRUE(saw_status);
}

TEST(Http2Session, GracefulShutdownSendsNoticeAndPingThenFinalGoawayAfterPingAck) {
  Harness h;
  int32_t id = h.client.request("q");
  h.exchange();
  h.server.start_graceful_shutdown();
  h.exchange();
  ASSERT_EQ(h.client.goaway_last_ids.size(), 1u);
  EXPECT_EQ(h.client.goaway_last_ids[0], (1u << 31) - 1) << "the first GOAWAY announces, it does not cut";
  EXPECT_EQ(h.client.pings, 1);
  h.exchange();  // the client's PING ack goes in; the final GOAWAY comes out
  ASSERT_EQ(h.client.goaway_last_ids.size(), 2u);
  EXPECT_EQ(h.client.goaway_last_ids[1], id);
  EXPECT_FALSE(h.transport.closing) << "a stream is still open: the connection stays";
}

TEST(Http2Session, GarbageInsteadOfThePrefaceIsRejected) {
  Harness h;
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_FALSE(h.server.on_bytes(Bytes(junk)));
}

// Whether this build serves nghttp2's large blocks from the page pool (not under ASan).
bool page_pool_active() {
  bool zeroed;
  void* p = base::page_allocate(1, &zeroed);
  if (p) base::page_deallocate(p);
  return p != nullptr;
}

// One call with a response of `headers` extra headers (a header block over 16 KiB, so
// CONTINUATION frames and extra frame-buffer chunks) and a 64 KiB body, driven to its end.
void call_with_big_response(Harness& h, Body& body, size_t headers) {
  h.client.data.clear();
  h.client.headers.clear();
  h.client.request("q");
  h.exchange();
  ASSERT_EQ(h.listener.streams.size(), 1u);
  std::vector<std::string> text;  // the HeaderList refers to it
  text.reserve(2 * headers);
  HeaderList response = {{":status", "200"}, {"content-type", "application/grpc"}};
  for (size_t i = 0; i < headers; ++i) {
    text.push_back("x-meta-" + std::to_string(i));
    text.push_back(std::string(100, static_cast<char>('a' + i % 26)));
    response.push_back({text[2 * i], text[2 * i + 1]});
  }
  body.sent = 0;
  ASSERT_TRUE(h.server.submit_headers(*h.listener.streams[0], response, &body));
  EXPECT_EQ(h.server.trim_idle_memory(), 0u) << "a response is under way: nothing may be dropped";
  for (int i = 0; i < 20 && !h.listener.streams.empty(); ++i) h.exchange();
  ASSERT_TRUE(h.listener.streams.empty()) << "the call did not finish";
  EXPECT_TRUE(h.client.data == body.payload.view()) << "got " << h.client.data.size() << " bytes";
  size_t seen = 0;
  bool status = false;
  for (auto& [k, v] : h.client.headers) {
    if (k.rfind("x-meta-", 0) == 0) {
      size_t i = std::stoul(k.substr(7));
      EXPECT_EQ(v, std::string(100, static_cast<char>('a' + i % 26))) << k;
      ++seen;
    }
    status |= (k == "grpc-status" && v == "0");
  }
  EXPECT_EQ(seen, headers);
  EXPECT_TRUE(status);
}

TEST(Http2Session, TrimmedWhileIdleTheSessionKeepsServingLargeResponsesAndManyHeaders) {
  Harness h;
  Body body;
  std::string payload(64 << 10, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('A' + i % 61);
  body.payload = Bytes(std::move(payload));
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(round);
    call_with_big_response(h, body, round % 2 ? 200 : 3);
    h.exchange();  // the client's window updates and acks: nothing left in flight
    size_t dropped = h.server.trim_idle_memory();
    if (page_pool_active()) {
      EXPECT_GT(dropped, 0u) << "an idle session gives its frame buffer's pages back";
    }
  }
}

// A frame nghttp2 has packed but not handed over yet (output budget reached mid-frame),
// and DATA held back by the client's window: trimming in between must change nothing.
TEST(Http2Session, NothingIsTrimmedWhileAFrameIsHalfSentOrDataWaitsForTheWindow) {
  Harness h;
  Body body;
  body.payload = Bytes(std::string(200 << 10, 'w'));  // over the 64 KiB stream window
  h.client.request("q");
  h.exchange();
  ASSERT_EQ(h.listener.streams.size(), 1u);
  std::vector<std::string> text;
  text.reserve(400);
  HeaderList response = {{":status", "200"}};
  for (size_t i = 0; i < 200; ++i) {
    text.push_back("x-meta-" + std::to_string(i));
    text.push_back(std::string(100, static_cast<char>('a' + i % 26)));
    response.push_back({text[2 * i], text[2 * i + 1]});
  }
  ASSERT_TRUE(h.server.submit_headers(*h.listener.streams[0], response, &body));
  for (int i = 0; i < 400 && !h.listener.streams.empty(); ++i) {
    EXPECT_EQ(h.server.trim_idle_memory(), 0u);
    Bytes in = h.client.output();
    if (!in.empty()) {
      ASSERT_TRUE(h.server.on_bytes(in));
    }
    transport::OutputQueue out;
    h.server.produce_output(out, 1000);  // stops nghttp2 after about one send call
    h.client.input(out);
  }
  ASSERT_TRUE(h.listener.streams.empty());
  EXPECT_TRUE(h.client.data == body.payload.view()) << "got " << h.client.data.size() << " bytes";
  size_t seen = 0;
  for (auto& [k, v] : h.client.headers) seen += k.rfind("x-meta-", 0) == 0 && v.size() == 100;
  EXPECT_EQ(seen, 200u);
}

// Opens `n` calls one after the other and has the server reset each (RST_STREAM CANCEL).
// client_ends: whether the client ended each request (END_STREAM) before the reset.
void reset_calls(Harness& h, int n, bool client_ends = false) {
  for (int i = 0; i < n; ++i) {
    h.client.request("q", client_ends);
    h.exchange();
    ASSERT_EQ(h.listener.streams.size(), 1u);
    h.server.reset(*h.listener.streams[0], NGHTTP2_CANCEL);
    h.exchange();
    ASSERT_TRUE(h.listener.streams.empty());
  }
}

// Client trailers for `stream` (HEADERS with
// END_STREAM | END_HEADERS and one literal field "x: y"); returns whether the server
// answered with a GOAWAY.
bool late_trailers_close_the_connection(Harness& h, uint8_t stream) {
  const uint8_t trailers[] = {0, 0, 5, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS,
                              0, 0, 0, stream, 0x00, 1, 'x', 1, 'y'};
  EXPECT_TRUE(h.server.on_bytes(Bytes(std::string(reinterpret_cast<const char*>(trailers), sizeof trailers))));
  transport::OutputQueue out;
  h.server.produce_output(out, 1u << 20);
  h.client.input(out);
  return !h.client.goaway_last_ids.empty();
}

// HEADERS on an identifier that was passed over and never opened: RFC 9113 5.1.1.
bool reused_identifier_closes_the_connection(Harness& h, uint8_t stream) {
  const uint8_t headers[] = {0, 0, 1, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS,
                             0, 0, 0, stream, 0x83};  // :method POST
  h.server.on_bytes(Bytes(std::string(reinterpret_cast<const char*>(headers), sizeof headers)));
  transport::OutputQueue out;
  h.server.produce_output(out, 1u << 20);
  h.client.input(out);
  return !h.client.goaway_last_ids.empty();
}

// The idle trim gives back the records of closed streams: late frames on a stream the
// server reset before the trim must still be taken quietly, and new streams served.
TEST(Http2Session, AfterTheIdleTrimLateTrailersOnAStreamWeResetAreIgnored) {
  for (int calls : {1, 10, 80}) {  // inline records, the pooled ring, the ring wrapped
    SCOPED_TRACE(calls);
    Harness h;
    reset_calls(h, calls);
    h.server.trim_idle_memory();
    EXPECT_FALSE(late_trailers_close_the_connection(h, 1));
    // The next call opens the next stream and is served as usual.
    h.client.request("r");
    h.exchange();
    ASSERT_EQ(h.listener.streams.size(), 1u);
    EXPECT_EQ(h.listener.streams[0]->id, 2 * calls + 1);
  }
}

TEST(Http2Session, LateTrailersOnResetStreamsAreIgnoredWhileRemembered) {
  for (int calls : {3, 10, 60}) {
    SCOPED_TRACE(calls);
    Harness h;
    reset_calls(h, calls);
    EXPECT_FALSE(late_trailers_close_the_connection(h, 1));
    EXPECT_FALSE(late_trailers_close_the_connection(h, static_cast<uint8_t>(2 * calls - 1)));
  }
}

// A client that ended its request may send nothing more on it, whatever the server did
// (RFC 9113 5.1): trailers after its END_STREAM are a connection error STREAM_CLOSED,
// also once the server has reset the stream and forgotten it in nghttp2.
TEST(Http2Session, TrailersAfterTheClientEndedAResetStreamAreAConnectionError) {
  for (int calls : {1, 10, 60}) {
    SCOPED_TRACE(calls);
    Harness h;
    reset_calls(h, calls, /*client_ends=*/true);
    const uint8_t trailers[] = {0, 0, 5, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS,
                                0, 0, 0, static_cast<uint8_t>(2 * calls - 1), 0x00, 1, 'x', 1, 'y'};
    EXPECT_FALSE(h.server.on_bytes(Bytes(std::string(reinterpret_cast<const char*>(trailers), sizeof trailers))));
    transport::OutputQueue out;
    h.server.produce_output(out, 1u << 20);
    h.client.input(out);
    ASSERT_FALSE(h.client.goaway_last_ids.empty());
  }
}

TEST(Http2Session, HeadersOnAnIdentifierNeverOpenedIsAConnectionError) {
  for (int calls : {2, 10}) {
    SCOPED_TRACE(calls);
    Harness h;
    reset_calls(h, calls);
    // Skip stream 2*calls+1: open the one after it, then come back.
    h.client.request("skip");
    h.client.output();  // stream 2*calls+1 is consumed on the client side and never sent
    h.client.request("q");
    h.exchange();
    ASSERT_EQ(h.listener.streams.size(), 1u);
    EXPECT_TRUE(reused_identifier_closes_the_connection(h, static_cast<uint8_t>(2 * calls + 1)));
  }
}

}  // namespace
}  // namespace uringrpc::http2
