// libFuzzer target for a whole connection: fuzz bytes go into our HTTP/2 session and gRPC
// layer (rpc::ConnectionCalls over an in-memory transport) with real handlers of all four
// kinds. What the server writes back must read as valid HTTP/2 and gRPC (response_checker.h),
// and each input must end with every call, stream and the connection itself freed
// (LeakSanitizer runs), without a hang.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../common/h2_frames.h"
#include "../common/memory_transport.h"
#include "fuzz_check.h"
#include "loop/shard.h"
#include "response_checker.h"
#include "rpc/connection_calls.h"
#include "rpc/memory_budget.h"
#include "rpc/method_table.h"
#include "server/layer_options.h"
#include "transport/transport.h"
#include "uringrpc/handler.h"
#include "uringrpc/stream.h"

namespace {

using namespace uringrpc;

// --- handlers: small, but each reaches a different part of the call API ----------------

// Unary echo; the first byte of the request picks an unusual ending.
Task<Bytes> unary_echo(Bytes request, ServerContext& ctx) {
  if (!request.empty()) {
    switch (request.data()[0]) {
      case 'A':  // abort with trailing metadata, a -bin one included
        ctx.abort(StatusCode::FAILED_PRECONDITION, "aborted \xff%",
                  {{"x-why", "fuzz"}, {"x-raw-bin", std::string("\x00\x01", 2)}});
      case 'T':
        throw std::runtime_error("handler threw");
      case 'C':  // a non-OK code: the response is discarded
        ctx.set_code(StatusCode::NOT_FOUND);
        ctx.set_details("no such thing");
        break;
      case 'M':  // echo the client's metadata back (may be invalid to send: that throws)
        for (const auto& [k, v] : ctx.client_metadata()) ctx.add_initial_metadata(k, v);
        ctx.set_trailing_metadata(ctx.client_metadata());
        break;
      default:
        break;
    }
  }
  co_return request;
}

// Server streaming: up to 8 copies of the request (count from its first byte), the
// first through co_yield and the rest through ctx.write, as mixed handlers do.
Stream<Bytes> server_stream(Bytes request, ServerContext& ctx) {
  const int n = request.empty() ? 0 : request.data()[0] % 9;
  if (n > 0) co_yield request;
  for (int i = 1; i < n; ++i) {
    if (!co_await ctx.write(request)) co_return;
  }
}

// Client streaming: reads everything, answers with the total size.
Task<Bytes> client_stream(Reader<Bytes>& requests, ServerContext& ctx) {
  size_t total = 0;
  int count = 0;
  while (auto r = co_await requests.next()) {
    total += r->size();
    // Mixing reader.next() with ctx.read() must keep the order.
    if (++count % 3 == 0) {
      if (auto extra = co_await ctx.read()) total += extra->size();
    }
  }
  co_return Bytes(std::to_string(total));
}

// Bidi echo: each request goes back as it arrives; initial metadata sent up front.
Task<void> bidi_echo(Reader<Bytes>& requests, ServerContext& ctx) {
  ctx.send_initial_metadata();
  while (auto r = co_await requests.next()) {
    if (!co_await ctx.write(std::move(*r))) co_return;
  }
}

// --- one process-wide shard and server configuration -----------------------------------

struct Config {
  rpc::RpcConfig rpc;
  http2::SessionSettings http2;
  rpc::MemoryBudget budget;  // the only shard's (index 0)
  size_t client_read_rate = 0;  // bytes the client reads per loop turn; 0: all of them
};

struct Env {
  rpc::MethodTable methods;
  rpc::RpcLimit tight_limit{2, 1};  // tight's calls.max_concurrent (normal has none)
  Config normal;
  Config tight;  // small limits, so the limit paths are reachable with short inputs
  loop::Shard shard{make_shard_config()};

  Env() {
    methods.add("/fuzz.Echo/Unary", unary(&unary_echo));
    methods.add("/fuzz.Echo/ServerStream", server_streaming(&server_stream));
    methods.add("/fuzz.Echo/ClientStream", client_streaming(&client_stream));
    methods.add("/fuzz.Echo/Bidi", bidi_streaming(&bidi_echo));
    // Both configurations come from ServerOptions, as the server's do. Timer-driven limits
    // (idle, age, stalled streams) stay off: wall-clock time would make runs unrepeatable.
    ServerOptions normal_options;
    normal_options.calls.stalled_stream_timeout = std::chrono::milliseconds(0);
    ServerOptions tight_options = normal_options;
    tight_options.calls.max_receive_message_bytes = 64;
    tight_options.calls.write_watermark_bytes = 16;
    tight_options.calls.max_concurrent = 2;
    tight_options.http2.max_concurrent_streams = 3;
    tight_options.http2.stream_window_bytes = 256;
    tight_options.http2.max_header_list_bytes = 512;
    // The peer limits, low enough for a short input to cross each of them.
    tight_options.keepalive.max_ping_strikes = 1;
    tight_options.http2.max_empty_frames = 2;
    tight_options.http2.reset_burst = 4;
    tight_options.http2.reset_refill_per_second = 1;
    tight_options.http2.max_queued_output_frames = 16;
    tight_options.http2.max_queued_output_bytes = 1024;
    normal.rpc = server::rpc_config(normal_options);
    normal.http2 = server::session_settings(normal_options);
    tight.rpc = server::rpc_config(tight_options);
    tight.http2 = server::session_settings(tight_options);
    tight.rpc.read_watermark = 32;  // below the window (the server ties them): reading pauses sooner
    tight.budget.limit = 512;
    for (Config* c : {&normal, &tight}) {
      c->rpc.methods = &methods;
      c->rpc.budgets = &c->budget;  // normal: limit 0, so only counted
    }
    tight.rpc.rpc_limit = &tight_limit;
    tight.client_read_rate = 32;  // a slow reader: output piles up and reading pauses
    shard.start([] {});
  }

  static loop::ShardConfig make_shard_config() {
    // Nothing is received through the ring here: keep its buffers small.
    ServerOptions options;
    options.loop.recv_buffer_bytes = 4096;
    options.loop.recv_buffer_count = 4;
    loop::ShardConfig c = server::shard_config(options);
    c.ring_entries = 64;
    return c;
  }
};

// --- the in-memory connection ------------------------------------------------------------

// Plays transport::Connection's part on the shard thread over the tests' MemoryTransport:
// output is produced at the end of the loop turn in which it was asked for, and "close
// after flush" closes right after that output (there is no kernel to wait for). Every
// byte goes through the response checker; the start of the answer is kept for FUZZ_OUTPUT.
class TurnEndConnection final : public loop::TurnHook {
 public:
  explicit TurnEndConnection(loop::Shard& shard) : shard_(shard) {
    transport_.set_on_flush([this] { shard_.at_turn_end(this); });
  }

  testing::MemoryTransport& transport() { return transport_; }
  void set_handler(transport::ConnectionHandler* h) { transport_.set_handler(h); }
  void set_read_rate(size_t bytes_per_turn) { transport_.set_read_rate(bytes_per_turn); }
  void request_flush() { transport_.request_flush(); }
  void close_after_flush() { transport_.close_after_flush(); }
  void client_reads() { transport_.client_reads(); }
  void peer_closed() { transport_.peer_closed(); }
  bool closed() const { return transport_.closed; }
  // Reading is the driver's job here: it skips reads while paused, as Connection does.
  bool reading_paused() const { return transport_.paused; }
  size_t unread() const { return transport_.unread(); }
  const std::string& output() const { return output_; }
  size_t output_bytes() const { return output_bytes_; }

  void on_turn_end() noexcept override {
    if (transport_.closed) return;
    transport_.drain(scratch_, kBudget);
    checker_.feed(scratch_);
    output_bytes_ += scratch_.size();
    if (output_.size() < kKeep) output_.append(scratch_, 0, kKeep - output_.size());
    scratch_.clear();
  }

 private:
  static constexpr size_t kBudget = 64u << 10;
  static constexpr size_t kKeep = 64u << 10;
  loop::Shard& shard_;
  testing::MemoryTransport transport_{"fuzz:memory"};
  fuzz::ResponseChecker checker_;
  std::string output_;
  std::string scratch_;
  size_t output_bytes_ = 0;
};

// --- one input, run on the shard thread ----------------------------------------------------

// The first input byte; the rest is what the client sends.
struct Options {
  bool add_preface;      // bits 0-1 not both zero: prepend the preface and an empty SETTINGS
  unsigned chunking;     // bits 2-4: how the bytes are cut into reads
  bool graceful;         // bit 5: graceful shutdown (double GOAWAY) after the first read
  bool cancel_all;       // bit 6: server stop's grace expiry after the last read
  bool tight;            // bit 7: the small-limits configuration
  explicit Options(uint8_t b)
      : add_preface((b & 3) != 0),
        chunking((b >> 2) & 7),
        graceful(b & 0x20),
        cancel_all(b & 0x40),
        tight(b & 0x80) {}
};


// Loop turns to let handlers finish after the last read before the peer hangs up. Each
// turn runs every ready coroutine, so a few suffice unless output keeps flowing.
constexpr int kSettleTurns = 4;
// A server still writing after this many turns is cut off, as an impatient client would.
constexpr int kMaxSettleTurns = 1000;
// Turns a connection may keep reading paused after the client has read everything.
constexpr int kMaxStuckTurns = 100;

class Run {
 public:
  Run(Env& env, const uint8_t* data, size_t size)
      : env_(env), options_(data[0]), transport_(env.shard) {
    std::string bytes;
    if (options_.add_preface) bytes = testing::h2::client_hello();
    bytes.append(reinterpret_cast<const char*>(data + 1), size - 1);
    input_ = std::move(bytes);
    seed_ = data[0] * 2654435761u + static_cast<uint32_t>(size);
  }

  const std::string& output() const { return transport_.output(); }

  // Blocks the calling (fuzzer) thread until the connection is gone and this run is over.
  void run_and_wait() {
    env_.shard.post([this] { start(); });
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  void start() {
    const Config& c = options_.tight ? env_.tight : env_.normal;
    calls_ = new rpc::ConnectionCalls(env_.shard, transport_.transport(), c.rpc, c.http2);
    calls_->set_on_gone(
        [](void* self, uint32_t) {
          auto* r = static_cast<Run*>(self);
          r->gone_ = true;
          r->maybe_finish();
        },
        this);
    transport_.set_handler(&calls_->session());
    transport_.set_read_rate(c.client_read_rate);
    transport_.request_flush();  // our SETTINGS go out first, as on a real connection
    input_bytes_ = Bytes(std::move(input_));
    step();
  }

  size_t next_chunk_size() {
    static constexpr size_t kFixed[] = {0, 1, 7, 64, 1024};
    if (options_.chunking == 0) return input_bytes_.size();
    if (options_.chunking < 5) return kFixed[options_.chunking];
    seed_ = seed_ * 1103515245u + 12345u;
    return 1 + (seed_ >> 16) % (options_.chunking == 5 ? 16 : 2048);
  }

  // One read per loop turn, so handlers run between reads as they would on a socket.
  void step() {
    transport_.client_reads();
    if (pos_ < input_bytes_.size() && !transport_.closed()) {
      if (transport_.reading_paused()) {
        // Output backpressure: no reads until the session resumes. With everything sent
        // read by the client, nothing can resume it any more: the connection is stuck.
        stuck_turns_ = transport_.unread() == 0 ? stuck_turns_ + 1 : 0;
        FUZZ_CHECK(stuck_turns_ < kMaxStuckTurns);
      } else {
        read_chunk();
      }
    } else if (!transport_.closed()) {
      if (options_.cancel_all && !cancelled_) {
        cancelled_ = true;
        calls_->cancel_all({StatusCode::UNAVAILABLE, "Cancelling all calls"});
        calls_->session().request_flush();
        calls_->close_when_flushed();
      }
      // Settle: keep turning while the server still writes, then hang up.
      ++settle_turns_;
      const size_t out = transport_.output_bytes();
      const bool quiet = out == last_output_bytes_ && transport_.unread() == 0;
      quiet_turns_ = quiet ? quiet_turns_ + 1 : 0;
      last_output_bytes_ = out;
      if (quiet_turns_ >= kSettleTurns || settle_turns_ >= kMaxSettleTurns) transport_.peer_closed();
    }
    if (transport_.closed()) {
      input_bytes_ = Bytes();
      steps_done_ = true;
      maybe_finish();
      return;
    }
    env_.shard.post([this] { step(); });
  }

  // What Connection::deliver does with one receive.
  void read_chunk() {
    const size_t n = std::min(next_chunk_size(), input_bytes_.size() - pos_);
    // A slice of one owned buffer: the session keeps slices of what it is given.
    if (!calls_->session().on_bytes(input_bytes_.slice(pos_, n))) transport_.close_after_flush();
    transport_.request_flush();
    pos_ += n;
    if (options_.graceful && !graceful_done_) {
      graceful_done_ = true;
      calls_->start_graceful_shutdown();
    }
    if (pos_ == input_bytes_.size()) input_bytes_ = Bytes();
  }

  // The connection frees itself (ConnectionCalls' on_gone) once its calls are gone; the
  // transport must outlive that and any flush already queued for it, hence one more turn.
  void maybe_finish() {
    if (!gone_ || !steps_done_) return;
    env_.shard.post([this] {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      cv_.notify_one();
    });
  }

  Env& env_;
  Options options_;
  TurnEndConnection transport_;
  rpc::ConnectionCalls* calls_ = nullptr;  // frees itself
  std::string input_;
  Bytes input_bytes_;
  size_t pos_ = 0;
  uint32_t seed_;
  int settle_turns_ = 0;
  int stuck_turns_ = 0;
  int quiet_turns_ = 0;
  size_t last_output_bytes_ = 0;
  bool graceful_done_ = false;
  bool cancelled_ = false;
  bool gone_ = false;
  bool steps_done_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Started once and never stopped: a shard per input would cost a thread and a ring
  // each time. Reachable from here, so LeakSanitizer does not count it.
  static Env* env = new Env();
  if (size < 1) return 0;
  Run run(*env, data, size);
  run.run_and_wait();
  // FUZZ_OUTPUT=file keeps what the server answered (its first 64 KiB), for a person
  // reproducing one input: libFuzzer's own output says nothing about it.
  if (const char* path = std::getenv("FUZZ_OUTPUT")) {
    if (FILE* f = std::fopen(path, "wb")) {
      std::fwrite(run.output().data(), 1, run.output().size(), f);
      std::fclose(f);
    }
  }
  // No RPC may stay admitted, and no byte stay charged to the memory budget, once the
  // connection is gone.
  FUZZ_CHECK(env->tight_limit.in_use() == 0);
  FUZZ_CHECK(env->normal.budget.used == 0);
  FUZZ_CHECK(env->tight.budget.used == 0);
  return 0;
}
