// rpc::Call and rpc::ConnectionCalls over an in-memory transport on a real loop::Shard:
// an nghttp2 client session on the test's side, the server's gRPC layer on the shard.
// Walks the stream limit across its boundary and ends calls every way one can end.
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <string>
#include <thread>

#include "loop/shard.h"
#include "rpc/connection_calls.h"
#include "server/layer_options.h"
#include "uringrpc/handler.h"
#include "uringrpc/server_context.h"

namespace uringrpc::rpc {
namespace {

// The socket's stand-in; a shared one is coming in tests/common/memory_transport.*.
class MemoryTransport final : public transport::Transport {
 public:
  void request_flush() override {}
  void close_after_flush() override { closing = true; }
  void abort() override { aborted = true; }
  const std::string& peer() const override { return peer_; }
  bool closing = false;
  bool aborted = false;

 private:
  std::string peer_ = "test:memory";
};

std::string grpc_frame(const std::string& payload) {
  std::string f(5, '\0');
  uint32_t n = static_cast<uint32_t>(payload.size());
  f[1] = static_cast<char>(n >> 24);
  f[2] = static_cast<char>(n >> 16);
  f[3] = static_cast<char>(n >> 8);
  f[4] = static_cast<char>(n);
  return f + payload;
}

// The client: a real nghttp2 client session that records each stream's fate.
struct Client {
  struct StreamRecord {
    std::string body;       // request bytes not yet taken by nghttp2
    bool end = false;       // END_STREAM after body
    std::vector<std::pair<std::string, std::string>> headers;  // response headers and trailers
    std::string data;
    bool closed = false;
    uint32_t error = 0;     // RST_STREAM code the stream closed with
    int statuses() const {
      int n = 0;
      for (auto& [k, v] : headers) n += k == "grpc-status";
      return n;
    }
    std::string status() const {
      for (auto& [k, v] : headers) {
        if (k == "grpc-status") return v;
      }
      return "";
    }
  };
  nghttp2_session* ng = nullptr;
  std::map<int32_t, StreamRecord> streams;

  explicit Client(uint32_t initial_window = 65535) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* u) {
          static_cast<Client*>(u)->streams[id].data.append(reinterpret_cast<const char*>(d), n);
          return 0;
        });
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl, const uint8_t* v, size_t vl,
                uint8_t, void* u) {
          static_cast<Client*>(u)->streams[f->hd.stream_id].headers.emplace_back(
              std::string(reinterpret_cast<const char*>(n), nl), std::string(reinterpret_cast<const char*>(v), vl));
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, [](nghttp2_session*, int32_t id, uint32_t err, void* u) {
      auto& r = static_cast<Client*>(u)->streams[id];
      r.closed = true;
      r.error = err;
      return 0;
    });
    // Until the server's SETTINGS arrive, nghttp2 would hold streams back at 100 itself.
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 1000);
    nghttp2_session_client_new2(&ng, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry s{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window};
    nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, &s, 1);
  }
  ~Client() { nghttp2_session_del(ng); }

  static nghttp2_nv nv(const char* n, const std::string& v) {
    return {(uint8_t*)n, (uint8_t*)v.data(), strlen(n), v.size(), NGHTTP2_NV_FLAG_NONE};
  }
  // A request whose body stays open (end false) until more() ends it.
  int32_t request(const std::string& path, const std::string& body, bool end, const std::string& timeout = "") {
    std::string post = "POST", http = "http", x = "x", ct = "application/grpc", te = "trailers";
    std::vector<nghttp2_nv> nva = {nv(":method", post), nv(":scheme", http), nv(":path", path),
                                   nv(":authority", x), nv("content-type", ct), nv("te", te)};
    if (!timeout.empty()) nva.push_back(nv("grpc-timeout", timeout));
    nghttp2_data_provider prd;
    prd.source.ptr = this;
    prd.read_callback = [](nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source* src, void*) -> ssize_t {
      auto& r = static_cast<Client*>(src->ptr)->streams[id];
      size_t n = std::min(len, r.body.size());
      if (n == 0 && !r.end) return NGHTTP2_ERR_DEFERRED;
      std::memcpy(buf, r.body.data(), n);
      r.body.erase(0, n);
      if (r.body.empty() && r.end) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    int32_t id = nghttp2_submit_request(ng, nullptr, nva.data(), nva.size(), &prd, nullptr);
    streams[id].body = body;
    streams[id].end = end;
    return id;
  }
  void more(int32_t id, const std::string& body, bool end) {
    streams[id].body += body;
    streams[id].end = end;
    nghttp2_session_resume_data(ng, id);
  }
  void reset(int32_t id) { nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL); }
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
};

class RpcCalls : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  // handshake false: the client has not seen the server's SETTINGS yet, so it does not
  // hold streams back at the server's advertised limit.
  void start(uint32_t client_window = 65535, bool handshake = true) {
    client_ = std::make_unique<Client>(client_window);
    methods_.add("/t.S/Echo", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> { co_return req; }));
    // Answers each message with itself until the client half-closes: a call that stays
    // live for as long as the test wants.
    methods_.add("/t.S/Hold", uringrpc::bidi_streaming([this](Reader<Bytes>& r, ServerContext& ctx) -> Task<void> {
                   ++handlers_started_;
                   while (auto m = co_await r.next()) co_await ctx.write(std::move(*m));
                 }));
    config_.methods = &methods_;
    config_.max_concurrent_rpcs = 10000;  // counted, so admission's release is visible
    config_.rpc_limit = &limit_;
    config_.stalled_stream_timeout_ms = stall_ms_;
    loop::ShardConfig sc = server::shard_config(ServerOptions{});
    sc.ring_entries = 64;
    sc.recv_buffer_count = 64;
    sc.recv_buffer_size = 4096;
    shard_ = std::make_unique<loop::Shard>(sc);
    shard_->start([] {});
    on_shard([&] {
      calls_ = new ConnectionCalls(*shard_, transport_, config_, settings_);
      calls_->set_list_slot(kListSlot);
      calls_->set_on_gone(
          [](void* self, uint32_t slot) {
            auto* t = static_cast<RpcCalls*>(self);
            t->gone_ = true;
            t->gone_slot_ = slot;
          },
          this);
    });
    if (handshake) pump();
  }

  void TearDown() override {
    on_shard([&] {
      if (!gone_) calls_->session().on_closed();
    });
    settle();
    EXPECT_TRUE(gone_) << "ConnectionCalls was not freed once its calls ended";
    // The callback runs after the free, so the slot is handed to it rather than read back.
    EXPECT_EQ(gone_slot_, kListSlot);
    EXPECT_EQ(limit_.in_use(), 0u) << "admission released more or fewer times than taken";
    on_shard([&] { shard_->request_exit(); });
    shard_->join();
  }

  // Runs fn on the shard thread, in its own loop turn, and waits for it.
  void on_shard(std::function<void()> fn) {
    std::promise<void> done;
    shard_->post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  // Moves bytes both ways until neither side has anything to say, on the shard thread
  // (nothing once the ConnectionCalls is gone, in TearDown).
  void exchange() {
    while (!gone_) {
      Bytes in = client_->output();
      if (!in.empty()) calls_->session().on_bytes(in);
      transport::OutputQueue out;
      calls_->session().produce_output(out, 1u << 20);
      if (!out.empty()) client_->input(out);
      if (in.empty() && out.empty()) return;
    }
  }
  // A few loop turns, each exchanging bytes: handlers resume, deferred frees run.
  void pump(int turns = 4) {
    for (int i = 0; i < turns; ++i) on_shard([&] { exchange(); });
  }
  void settle() { pump(8); }
  bool idle() {
    bool r = false;
    on_shard([&] { r = calls_->idle(); });
    return r;
  }

  uint64_t stall_ms_ = 0;
  MethodTable methods_;
  RpcConfig config_ = server::rpc_config(ServerOptions{});
  RpcLimit limit_{10000, 1};
  http2::SessionSettings settings_ = server::session_settings(ServerOptions{});  // 100 concurrent streams
  MemoryTransport transport_;
  std::unique_ptr<loop::Shard> shard_;
  ConnectionCalls* calls_ = nullptr;
  std::unique_ptr<Client> client_;
  static constexpr uint32_t kListSlot = 7;  // where a server would keep it in its shard's list
  bool gone_ = false;
  uint32_t gone_slot_ = 0;
  int handlers_started_ = 0;
};

constexpr uint32_t kRefused = NGHTTP2_REFUSED_STREAM;

class FreshRpcCalls : public RpcCalls {
 protected:
  void SetUp() override { start(65535, /*handshake=*/false); }
};

TEST_F(FreshRpcCalls, HundredthLiveCallIsServedAndHundredFirstIsRefused) {
  // All 101 in the client's first flight, before it knows the limit.
  std::vector<int32_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(client_->request("/t.S/Hold", "", false));
  int32_t extra = client_->request("/t.S/Hold", "", false);
  pump();
  EXPECT_EQ(handlers_started_, 100);
  EXPECT_EQ(limit_.in_use(), 100u);
  for (int32_t id : ids) EXPECT_FALSE(client_->streams[id].closed) << "stream " << id;
  EXPECT_TRUE(client_->streams[extra].closed);
  EXPECT_EQ(client_->streams[extra].error, kRefused);
  EXPECT_EQ(handlers_started_, 100);
  for (int32_t id : ids) client_->more(id, "", true);
  settle();
  EXPECT_TRUE(idle());
}

TEST_F(RpcCalls, ResetStreamsHandlerCountsUntilItEnds) {
  std::vector<int32_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(client_->request("/t.S/Hold", "", false));
  pump();
  ASSERT_EQ(handlers_started_, 100);
  // Reset one and open one in the same bytes (Rapid Reset): the reset call's handler is
  // destroyed only at the end of the turn, so the new stream still finds 100 live calls.
  client_->reset(ids[0]);
  int32_t racing = client_->request("/t.S/Hold", "", false);
  on_shard([&] { exchange(); });
  EXPECT_EQ(client_->streams[racing].error, kRefused);
  settle();  // the reset call's handler ends: its slot is free now
  int32_t later = client_->request("/t.S/Hold", "", false);
  pump();
  EXPECT_FALSE(client_->streams[later].closed);
  EXPECT_EQ(handlers_started_, 101);
  EXPECT_EQ(limit_.in_use(), 100u);
  for (int32_t id : ids) {
    if (id != ids[0]) client_->more(id, "", true);
  }
  client_->more(later, "", true);
  settle();
  EXPECT_TRUE(idle());
}

TEST_F(RpcCalls, HandlerReturnSendsOneStatusAndReleasesOnce) {
  int32_t id = client_->request("/t.S/Echo", grpc_frame("ping"), true);
  settle();
  auto& r = client_->streams[id];
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.error, 0u);
  EXPECT_EQ(r.data, grpc_frame("ping"));
  EXPECT_EQ(r.statuses(), 1);
  EXPECT_EQ(r.status(), "0");
  EXPECT_EQ(limit_.in_use(), 0u);
  EXPECT_TRUE(idle());
}

TEST_F(RpcCalls, ClientResetEndsTheCallOnceWithoutAStatus) {
  int32_t id = client_->request("/t.S/Hold", grpc_frame("a"), false);
  pump();
  ASSERT_EQ(limit_.in_use(), 1u);
  client_->reset(id);
  settle();
  EXPECT_EQ(client_->streams[id].statuses(), 0) << "a reset stream gets no trailers";
  EXPECT_EQ(limit_.in_use(), 0u);
  EXPECT_TRUE(idle());
  // The connection goes on: the freed slot serves the next call.
  int32_t next = client_->request("/t.S/Echo", grpc_frame("b"), true);
  settle();
  EXPECT_EQ(client_->streams[next].status(), "0");
}

TEST_F(RpcCalls, DeadlineEndsTheCallOnceWithDeadlineExceeded) {
  int32_t id = client_->request("/t.S/Hold", "", false, "30m");
  pump();
  ASSERT_EQ(limit_.in_use(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  settle();
  auto& r = client_->streams[id];
  EXPECT_EQ(r.statuses(), 1);
  EXPECT_EQ(r.status(), std::to_string(static_cast<int>(StatusCode::DEADLINE_EXCEEDED)));
  EXPECT_EQ(limit_.in_use(), 0u);
  // A message and a half-close after the end change nothing: no second status.
  if (!r.closed) client_->more(id, grpc_frame("late"), true);
  settle();
  EXPECT_EQ(r.statuses(), 1);
  EXPECT_TRUE(idle());
}

TEST_F(RpcCalls, ShutdownCancelsEveryCallOnceWithItsStatus) {
  int32_t a = client_->request("/t.S/Hold", "", false);
  int32_t b = client_->request("/t.S/Hold", grpc_frame("x"), false);
  pump();
  ASSERT_EQ(limit_.in_use(), 2u);
  on_shard([&] { calls_->cancel_all({StatusCode::UNAVAILABLE, "going away"}); });
  settle();
  for (int32_t id : {a, b}) {
    EXPECT_EQ(client_->streams[id].statuses(), 1) << "stream " << id;
    EXPECT_EQ(client_->streams[id].status(), std::to_string(static_cast<int>(StatusCode::UNAVAILABLE)));
  }
  EXPECT_EQ(limit_.in_use(), 0u);
  // A reset arriving after the call ended releases nothing twice.
  client_->reset(a);
  settle();
  EXPECT_EQ(limit_.in_use(), 0u);
  EXPECT_TRUE(idle());
}

class StalledRpcCalls : public RpcCalls {
 protected:
  void SetUp() override {
    stall_ms_ = 20;
    start(/*client_window=*/0);  // the client never lets a byte of DATA through
  }
};

TEST_F(StalledRpcCalls, StalledStreamIsResetOnceAndItsCallEnds) {
  int32_t id = client_->request("/t.S/Hold", grpc_frame("stuck"), false);
  pump();
  ASSERT_EQ(limit_.in_use(), 1u);
  auto& r = client_->streams[id];
  for (int i = 0; i < 40 && !r.closed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    pump(1);
  }
  settle();
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.error, static_cast<uint32_t>(NGHTTP2_CANCEL));
  EXPECT_EQ(r.statuses(), 0) << "a stalled stream is reset, not given trailers";
  EXPECT_EQ(limit_.in_use(), 0u);
  EXPECT_TRUE(idle());
}

}  // namespace
}  // namespace uringrpc::rpc
