// Call: one RPC on one stream. It owns the handler's coroutine, the request message
// queue and the response queue; it is the ServerContext's implementation and the
// stream's response body. Created by ConnectionCalls when a request's headers arrive.
#pragma once

#include <chrono>
#include <coroutine>
#include <optional>
#include <string>
#include <vector>

#include "base/small_pool.h"
#include "http2/session.h"
#include "loop/shard.h"
#include "loop/timer_wheel.h"
#include "rpc/call_metrics.h"
#include "rpc/compression.h"
#include "rpc/deframer.h"
#include "rpc/memory_budget.h"
#include "rpc/message_queue.h"
#include "rpc/method_table.h"
#include "rpc/rpc_limit.h"
#include "uringrpc/server_context.h"

namespace uringrpc::rpc {

class ConnectionCalls;
class InterceptorChain;

// Read-only settings shared by every call of a server.
// The options are ServerOptions', without defaults here: server::rpc_config()
// (server/layer_options.h) fills them in; the pointers are the server's to wire up.
struct RpcConfig {
  const MethodTable* methods = nullptr;
  size_t max_receive_message_size;
  size_t max_send_message_size;  // SIZE_MAX: no limit
  size_t write_watermark;
  size_t read_watermark;
  size_t max_concurrent_rpcs;
  RpcLimit* rpc_limit = nullptr;  // the server's, when max_concurrent_rpcs > 0; null: no limit
  // Connection life and stalled streams (ServerOptions); 0: off.
  uint64_t max_connection_idle_ms;
  uint64_t max_connection_age_ms;
  uint64_t max_connection_age_grace_ms;
  uint64_t stalled_stream_timeout_ms;
  MemoryBudget* budgets = nullptr;  // one per shard, indexed by shard index; null: no budget
  ShardMetrics* metrics = nullptr;  // one per shard, indexed by shard index; null: metrics off
  Compression default_compression;  // responses', unless the handler chooses
  // Server::add_interceptor and the access log; null when there are none (the usual case).
  const InterceptorChain* interceptors = nullptr;
};

class Call final : public http2::ResponseBody {
 public:
  URINGRPC_POOLED
  Call(ConnectionCalls& owner, http2::Stream& stream, const MethodTable::Entry& method,
       http2::RawMetadata client_metadata, std::optional<uint64_t> deadline_ms, bool admitted);
  ~Call();
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // A call served by the fallback handler (MethodTable::fallback) keeps the path it was
  // called with; before start().
  void set_called_path(std::string_view path);
  // The request's :authority (or host), viewed in its nghttp2 buffer, whose reference
  // (or null) the call takes over; before start(). See request_identity.cc.
  void set_authority(std::string_view authority, nghttp2_rcbuf* buffer) noexcept;
  void start();

  // --- from the HTTP/2 layer (via ConnectionCalls)
  void on_data(const Bytes& chunk);
  void on_request_end();
  void on_stream_closed(uint32_t h2_error);

  // Ends the RPC with this status (if not ended yet) and cancels the handler.
  void cancel(Status status);

  // --- ServerContext's implementation
  ServerContext& context() { return ctx_; }
  std::string_view method() const { return path_; }
  // Built on first use: most handlers never look, and the copy costs allocations.
  const Metadata& client_metadata() const;
  std::string_view peer() const;
  std::string_view authority() const { return authority_; }
  std::string_view user_agent() const;
  const PeerIdentity* peer_identity() const;
  std::optional<std::chrono::steady_clock::time_point> deadline() const { return deadline_; }
  bool cancelled() const { return cancelled_; }
  void set_code(StatusCode c) { code_ = c; }
  StatusCode code() const { return code_; }
  void set_details(std::string d) { details_ = std::move(d); }
  void set_error_details(std::string d) { error_details_ = std::move(d); }
  void set_trailing_metadata(Metadata md) { trailing_ = std::move(md); }
  void add_initial_metadata(std::string k, std::string v);
  void send_initial_metadata();
  bool headers_sent() const { return headers_sent_; }

  CallCompression& compression() { return compression_; }

  // Write: queues the message; returns true if the writer must wait (over the watermark).
  // *ok is false if the RPC can no longer send.
  bool enqueue_write(Bytes payload, bool* ok, WriteOptions options = {});
  void park_writer(std::coroutine_handle<> h) {
    parked_ = h;
    parked_reader_ = false;
  }
  bool read_ready() const { return !inbound_.empty() || half_closed_ || ended_; }
  void park_reader(std::coroutine_handle<> h) {
    parked_ = h;
    parked_reader_ = true;
  }
  std::optional<Bytes> take_message();
  // Whether the message take_message() last returned arrived with the compressed flag.
  bool last_read_compressed() const { return last_read_compressed_; }
  void resumed() { scheduled_ = nullptr; }

  // --- http2::ResponseBody
  size_t body_ready(size_t max, bool* eof) noexcept override;
  void body_emit(size_t n, transport::OutputQueue& out) noexcept override;
  void body_trailers(http2::HeaderList& out) noexcept override;
  const http2::FixedHeaders* body_fixed_trailers() noexcept override;

  // One look of ConnectionCalls' stall sweep: nothing waits (or the stream is gone), bytes
  // wait, or they waited the whole timeout and the stream was reset just now.
  enum class Stall : uint8_t { kNone, kWaiting, kReset };
  Stall check_stall(uint64_t now_ms, uint64_t timeout_ms);

  Call* prev_ = nullptr;  // ConnectionCalls' list
  Call* next_ = nullptr;

 private:
  struct Runner;
  Runner run(Task<void> task);
  // Status and trailers are passed along by reference down to decide(), which moves them
  // into the call once: three strings and a vector moved once per call, not three times.
  void on_handler_returned(Status&& status, Metadata&& trailing);
  // Every way a call ends decides its final status here, once: it cancels the deadline,
  // fires the rpc_end probe and keeps the trailers. False if it was decided already.
  bool decide(Status&& status, Metadata&& trailing);
  // decide(), then sends the status to the client (trailers, or Trailers-Only headers).
  void end(Status&& status, Metadata&& trailing);
  void submit_response_headers();
  // grpc-status, grpc-message, the trailing metadata and grpc-status-details-bin of final_.
  void append_status(http2::HeaderList& out);
  // Resumes the parked handler if it waits for what just happened.
  void wake_reader();
  void wake_writer();
  void wake();
  void destroy_handler();
  void release_admission();
  void maybe_delete();
  // Interceptors only: the handler wrapped in the before-hooks; and, once the call is over
  // (from the deferred delete), its CallStats handed to the after-hooks.
  Task<void> start_intercepted();
  void on_call_end() noexcept;
  void return_window(size_t message_bytes);
  void charge(size_t n);
  void discharge(size_t n);
  static void on_deadline(void* self);
  void reset_stalled();

  ConnectionCalls& owner_;
  loop::Shard& shard_;
  http2::Stream* stream_;
  const MethodTable::Entry& method_;
  std::string_view path_;             // method_.path, or called_path_ for the fallback
  http2::PooledString called_path_;
  // From the request head, which is released once the call exists: the call holds a
  // reference on the authority's buffer instead of copying it.
  std::string_view authority_;
  nghttp2_rcbuf* authority_buf_ = nullptr;  // held until the call goes (before its session)
  ServerContext ctx_;
  http2::RawMetadata raw_metadata_;               // as received, -bin values decoded
  mutable std::optional<Metadata> client_metadata_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  loop::Timer deadline_timer_;
  bool admitted_;
  uint64_t start_ns_ = 0;  // for the rpc_end probe; taken only while a tracer listens
  CallMeter meter_;        // the method's metrics on this shard (ServerOptions::metrics)

  // What the call did (CallStats; the response bytes are emitted_). Counted always: three
  // increments are cheaper than a branch on whether anyone looks.
  uint64_t messages_in_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t messages_out_ = 0;
  // Interceptors (RpcConfig::interceptors): null without, and then nothing below is touched,
  // not even initialized (start_intercepted() does that): a call without pays no store.
  const InterceptorChain* interceptors_;
  size_t interceptors_entered_;  // before-hooks started, whose after-hooks run
  int64_t wall_start_ns_;        // system_clock
  int64_t steady_start_ns_;      // steady_clock, as steady_end_ns_
  int64_t steady_end_ns_;        // when the final status was decided (decide())

  // handler
  std::coroutine_handle<> runner_;
  std::coroutine_handle<> parked_;     // the handler waiting on a read or a write
  bool parked_reader_ = false;
  std::coroutine_handle<> scheduled_;  // queued on the shard, not yet resumed
  bool handler_done_ = false;
  bool destroy_queued_ = false;
  bool delete_queued_ = false;

  CallCompression compression_;

  // request side
  Deframer deframer_;
  // A received message and its compressed flag (for ServerContext::last_read_compressed):
  // a slot grows from 24 to 32 bytes; no second queue, no allocation per message.
  struct InMessage {
    Bytes message;
    bool compressed;
  };
  MessageQueue<InMessage> inbound_;
  bool last_read_compressed_ = false;
  size_t inbound_bytes_ = 0;
  size_t window_held_ = 0;   // received bytes whose window we have not returned yet
  bool half_closed_ = false;

  size_t buffered_ = 0;      // what this call counts against the shard's MemoryBudget

  // stalled-stream detection: response bytes waiting, none taken by the network for long
  // (ConnectionCalls' sweep calls check_stall(); the connection has the one timer)
  bool stall_reset_ = false;     // reset for it: the sweep looks no more
  uint64_t emitted_ = 0;         // response bytes handed to the connection, ever
  uint64_t emitted_seen_ = 0;    // emitted_ at the last check
  uint64_t last_progress_ms_ = 0;

  // response side
  struct OutMessage {
    uint8_t prefix[kMessagePrefixSize];
    uint8_t prefix_sent;
    Bytes payload;
    size_t payload_sent;
  };
  MessageQueue<OutMessage> outbound_;
  size_t outbound_bytes_ = 0;
  Metadata initial_;
  bool headers_sent_ = false;
  bool ended_ = false;       // final status decided
  bool trailers_due_ = false;
  bool cancelled_ = false;
  StatusCode code_ = StatusCode::OK;
  std::string details_;
  std::string error_details_;  // serialized google.rpc.Status (set_error_details)
  Metadata trailing_;
  Status final_;
  std::string status_text_;    // grpc-status of a code outside the defined ones (status_digits)
  std::string message_text_;
  std::string details_text_;   // grpc-status-details-bin, base64
  std::vector<std::string> encoded_trailing_;  // -bin trailer values while nghttp2 copies them
};

}  // namespace uringrpc::rpc
