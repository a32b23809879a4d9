// ConnectionCalls: the gRPC side of one HTTP/2 connection. It owns the Session, turns
// request headers into Calls (or into an immediate error response), routes DATA to them,
// and ends them all on shutdown. Created by the server layer for each accepted socket.
#pragma once

#include <functional>

#include "http2/session.h"
#include "loop/shard.h"
#include "rpc/call.h"

namespace uringrpc::rpc {

class ConnectionCalls final : public http2::StreamListener {
 public:
  ConnectionCalls(loop::Shard& shard, transport::Transport& conn, const RpcConfig& config,
                  const http2::SessionSettings& settings);
  ~ConnectionCalls();

  // Called once the connection and every call on it are gone, right after the object is
  // freed, with its owner's pointer and the list slot it had. A plain function and pointer,
  // not a std::function: a closure of the server's four captures took a 32-byte heap block
  // per connection besides the 32 bytes here.
  using GoneFn = void (*)(void* owner, uint32_t list_slot);
  void set_on_gone(GoneFn fn, void* owner) {
    on_gone_ = fn;
    gone_owner_ = owner;
  }
  // Where the server layer keeps this connection in its shard's list, so that a close
  // removes it in O(1) (a shard may hold 100,000); kept in what was padding.
  uint32_t list_slot() const { return list_slot_; }
  void set_list_slot(uint32_t slot) { list_slot_ = slot; }
  // Send the double GOAWAY; calls in flight go on. Streams the client opened before it
  // saw the notice (they arrive before its PING ack, i.e. before the final GOAWAY) are
  // served like the others: refusing them would fail calls of clients that cannot retry
  // a REFUSED_STREAM, such as those of a service restarting through a socket systemd
  // holds. Streams after the final GOAWAY are ignored by nghttp2 (the client retries
  // them elsewhere); the server's grace, the age grace or cancel_all bound what is served.
  void start_graceful_shutdown();
  // Ends every call now with this status (trailers to the client) and cancels handlers.
  void cancel_all(const Status& status);
  bool idle() const { return calls_ == nullptr; }
  void close_when_flushed() { session_.close_after_flush(); }

  loop::Shard& shard() { return shard_; }
  http2::Session& session() { return session_; }
  const RpcConfig& config() const { return config_; }
  MemoryBudget* budget() const { return budget_; }
  ShardMetrics* metrics() const { return metrics_; }
  void remove(Call* call);
  // A call queued response bytes while it had none waiting: the stall sweep (below) runs.
  void watch_stalls();

  // http2::StreamListener
  void on_request(http2::Stream& s, bool end_stream) noexcept override;
  void on_request_data(http2::Stream& s, const Bytes& chunk) noexcept override;
  void on_request_end(http2::Stream& s) noexcept override;
  void on_stream_closed(http2::Stream& s, uint32_t h2_error) noexcept override;
  void on_session_closed() noexcept override;

 private:
  void reject(http2::Stream& s, const char* http_status, StatusCode code, std::string_view message,
              bool accept_encoding = false);
  void maybe_delete();
  // Connection life (max_connection_idle / max_connection_age): graceful GOAWAY, then
  // after the age grace the calls still running are cancelled.
  void arm_idle_timer();
  static void idle_expired(void* self);
  static void age_expired(void* self);
  static void age_grace_expired(void* self);
  static void sweep_stalls(void* self);

  loop::Shard& shard_;
  const RpcConfig& config_;
  http2::Session session_;
  Call* calls_ = nullptr;
  size_t live_calls_ = 0;     // calls_ entries: a reset stream's handler counts until it ends
  uint32_t max_streams_;      // advertised SETTINGS_MAX_CONCURRENT_STREAMS
  uint32_t last_method_ = MethodTable::kUnknownSlot;  // slot of the last call's method (a lookup hint)
  MemoryBudget* budget_;      // this shard's, or null
  ShardMetrics* metrics_;     // this shard's, or null (metrics off)
  // max_connection_idle / max_connection_age (off by default): the timers exist only when
  // one is set, so that the idle connections of a server without them do not carry 112 bytes.
  struct LifeTimers {
    loop::Timer idle;
    loop::Timer age;  // then the age grace
  };
  std::unique_ptr<LifeTimers> life_;
  // Stalled streams (stalled_stream_timeout_ms): one timer for the connection, which looks
  // at every call with response bytes waiting each quarter of the timeout, instead of one
  // per call armed by its first write and cancelled at its end (a timer-wheel insertion
  // and removal per RPC). Made by the first write, freed by a sweep that finds nothing
  // waiting: an idle connection carries the pointer only.
  std::unique_ptr<loop::Timer> stall_timer_;
  bool shutting_down_ = false;   // GOAWAY sent
  bool refusing_ = false;        // new streams get REFUSED_STREAM
  bool closed_ = false;
  bool delete_queued_ = false;
  uint32_t list_slot_ = 0;
  GoneFn on_gone_ = nullptr;
  void* gone_owner_ = nullptr;
};

}  // namespace uringrpc::rpc
