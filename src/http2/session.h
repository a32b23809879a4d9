// Session: an nghttp2 server session over one transport (a socket Connection, or an
// in-memory one in tests and fuzzers). Bytes in through
// nghttp2_session_mem_recv, frames out through nghttp2_session_send into the
// connection's output queue (DATA payloads by reference, NGHTTP2_DATA_FLAG_NO_COPY).
// Requests go up to a StreamListener registered by the rpc layer.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "http2/closed_streams.h"
#include "http2/fixed_headers.h"
#include "http2/frame_scanner.h"
#include "http2/nghttp2_memory.h"
#include "http2/peer_limits.h"
#include "http2/stream.h"
#include "loop/timer_wheel.h"
#include "transport/transport.h"

namespace uringrpc::http2 {

class StreamListener {
 public:
  // A request's headers are complete (END_HEADERS). end_stream: it has no body.
  virtual void on_request(Stream& s, bool end_stream) noexcept = 0;
  virtual void on_request_data(Stream& s, const Bytes& chunk) noexcept = 0;
  // The client half-closed the stream.
  virtual void on_request_end(Stream& s) noexcept = 0;
  // The stream is gone (h2_error 0: completed normally; else reset or connection loss).
  // The Stream object is freed right after this returns.
  virtual void on_stream_closed(Stream& s, uint32_t h2_error) noexcept = 0;
  // The connection is gone; on_stream_closed has been called for every stream.
  virtual void on_session_closed() noexcept = 0;

 protected:
  ~StreamListener() = default;
};

// What the session advertises and the limits it holds its peer to (ServerOptions says
// what each means to users). Times in milliseconds; 0 turns a limit off. No defaults here:
// they are ServerOptions', and server::session_settings() (server/layer_options.h) fills
// this in, for the server and for tests alike.
struct SessionSettings {
  uint32_t max_concurrent_streams;
  uint32_t stream_window_bytes;
  uint32_t connection_window_bytes;
  uint32_t max_header_list_bytes;
  unsigned max_ping_strikes;
  uint64_t min_ping_interval_ms;
  uint64_t min_ping_interval_idle_ms;
  uint64_t keepalive_time_ms;
  uint64_t keepalive_timeout_ms;
  unsigned max_empty_frames;
  unsigned reset_burst;
  unsigned reset_refill_per_second;
  size_t max_queued_output_frames;
  size_t max_queued_output_bytes;
};

class Session final : public transport::ConnectionHandler {
 public:
  // timers: the shard's wheel, for keepalive pings and the ping clock; null turns both off
  // (unit tests that do not need them). settings is kept by reference (every session of a
  // shard shares its one copy): it must outlive the session, so no temporaries.
  Session(transport::Transport& conn, const SessionSettings& settings, StreamListener& listener,
          loop::TimerWheel* timers = nullptr);
  Session(transport::Transport&, SessionSettings&&, StreamListener&, loop::TimerWheel* = nullptr) = delete;
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // --- for the rpc layer
  // Response headers; with a body source the stream stays open for DATA and trailers,
  // without one the HEADERS frame carries END_STREAM (gRPC Trailers-Only).
  bool submit_headers(Stream& s, const HeaderList& headers, ResponseBody* body);
  bool submit_fixed_headers(Stream& s, const FixedHeaders& headers, ResponseBody* body);
  // A complete response with a short text body and no trailers (END_STREAM on the DATA).
  bool submit_canned_response(Stream& s, const HeaderList& headers, std::string body);
  void resume_body(Stream& s);
  void reset(Stream& s, uint32_t h2_error);
  // Returns flow-control window for n received body bytes the application has taken.
  void consume(Stream& s, size_t n);
  // Double GOAWAY: a notice with last-stream-id 2^31-1 and a PING, the final GOAWAY
  // when the PING's ack arrives; the connection closes once no stream is left.
  void start_graceful_shutdown();
  bool shutting_down() const { return goaway_ != Goaway::kNone; }
  void close_now();
  // GOAWAY with this error and debug text, then close once it is out. Used for peers that
  // break a limit (ENHANCE_YOUR_CALM); what they send after it is not processed.
  void fail_connection(uint32_t h2_error, std::string_view debug);
  // Final GOAWAY (if not sent yet), then close once everything queued is out.
  void close_after_flush();
  const std::string& peer() const { return conn_ ? conn_->peer() : departed_->peer; }
  // The TLS client's certificate identity, or null. Read from the transport while it lives
  // (requests only arrive after the handshake, so it is settled by then) and kept from
  // on_closed on: the same object throughout, so a pointer to it stays valid as long as
  // this session does.
  const PeerIdentity* peer_identity() const {
    return conn_ ? conn_->peer_identity().get() : departed_->identity.get();
  }
  size_t open_streams() const { return stream_count_.open_streams(); }
  uint32_t max_header_list_bytes() const { return settings_.max_header_list_bytes; }
  // The client's SETTINGS_MAX_HEADER_LIST_SIZE: the largest header block (name + value + 32
  // per field) it accepts; UINT32_MAX when it advertised none.
  uint32_t peer_max_header_list_bytes() const {
    return ng_ ? nghttp2_session_get_remote_settings(ng_, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE) : UINT32_MAX;
  }
  void request_flush() {
    if (conn_) conn_->request_flush();
  }
  // Gives back the idle memory the shard's sweep would (session_idle.cc) if the session is
  // quiet now; returns the pages dropped. The sweep does this by itself: for tests.
  size_t trim_idle_memory();

  // --- transport::ConnectionHandler
  bool on_bytes(const Bytes& data) noexcept override;
  void produce_output(transport::OutputQueue& out, size_t budget) noexcept override;
  void on_closed() noexcept override;

 private:
  friend struct SessionCallbacks;  // session_callbacks.cc: nghttp2's events in
  void check_done();
  bool submit_nva(Stream& s, const nghttp2_nv* nva, size_t n, ResponseBody* body);
  // Nothing queued, half-sent or open: SessionMemory may drop the frame buffer's pages.
  bool quiet_for_trim() const;
  size_t trim_now();  // only when quiet_for_trim(); returns the pages dropped
  // SessionMemory's sweep: a period without nghttp2 allocating (session_idle.cc).
  static bool on_idle_period(void* self);

  // --- acting on the peer rules' verdicts (session_limits.cc)
  // Feeds nghttp2 one piece of a chunk; false once reading must stop (a connection error).
  bool feed(const uint8_t* p, size_t n);
  // Carries out a verdict on the frame being read (stream: its stream). Returns what an
  // nghttp2 callback returns: 0 to go on, NGHTTP2_ERR_CALLBACK_FAILURE to stop reading
  // at this very frame, so that nothing after it is answered or dispatched.
  // A fine verdict (every frame of a well-behaved peer) costs a compare, not a call.
  int act(Verdict v, int32_t stream) { return v.fine() ? 0 : act_on(v, stream); }
  int act_on(Verdict v, int32_t stream);
  // RST_STREAM for a stream error we decided on: charged to the induced-reset budget now,
  // at the frame that caused it (0, or NGHTTP2_ERR_CALLBACK_FAILURE as act()).
  int reset_stream(int32_t stream, uint32_t h2_error);
  // RST_STREAM PROTOCOL_ERROR for a request that breaks RFC 9113 section 8 (RequestRules),
  // once per stream.
  int reset_malformed(Stream& st);
  // The stream a frame's header names is not open: ClosedStreams judges it.
  int on_frame_for_missing_stream(int32_t stream, bool headers);
  // A DATA frame's header, before nghttp2 reads its last byte: on a stream that is gone
  // (nghttp2 would drop it without a callback)?
  int judge_missing_data(int32_t stream);
  // A DATA frame on an open stream (on_begin_frame): over the stream's window? nghttp2
  // resets that stream without telling anyone.
  int judge_data_window(int32_t stream, uint32_t length);
  void close_stream(Stream* st, uint32_t h2_error);
  void forget_stream(Stream* st) {
    if (last_stream_ == st) last_stream_ = nullptr;
  }
  void check_output_pressure();
  void apply_keepalive(Keepalive::Step step);
  static void keepalive_fired(void* self);
  uint64_t now_ms() const;
  static constexpr uint8_t kKeepalivePingOpaque[8] = {'u', 'r', 'p', 'c', 'k', 'e', 'e', 'p'};
  static constexpr uint8_t kShutdownPingOpaque[8] = {'u', 'r', 'p', 'c', 's', 't', 'o', 'p'};

  // Where the connection is. Input is read only while kOpen; kFailed: a limit's GOAWAY is
  // on its way; kClosed: the transport is gone.
  enum class Phase : uint8_t { kOpen, kFailed, kClosed };
  // Our GOAWAYs: none, the graceful notice (last-stream-id 2^31-1), the final one.
  enum class Goaway : uint8_t { kNone, kNotice, kFinal };

  transport::Transport* conn_;
  StreamListener& listener_;
  // Who the peer was, copied when the transport goes (calls may still ask). Kept apart so
  // that the thousands of idle sessions a server may hold do not carry it.
  struct Departed {
    std::string peer;
    std::shared_ptr<const PeerIdentity> identity;
  };
  std::unique_ptr<Departed> departed_;
  nghttp2_session* ng_ = nullptr;
  const Bytes* input_ = nullptr;           // the chunk mem_recv is parsing (for zero-copy slices)
  transport::OutputQueue* out_ = nullptr;  // where produce_output is writing
  size_t budget_ = 0;
  StreamId last_stream_id_ = 0;    // SessionCallbacks::stream's memory of its last answer
  Stream* last_stream_ = nullptr;  // (cleared when that stream goes)
  Stream* streams_ = nullptr;  // intrusive list head; notified one by one when the transport goes
  const SessionSettings& settings_;  // the shard's
  loop::TimerWheel* timers_;
  SessionMemory mem_;  // nghttp2's allocator; outlives ng_ (freed in ~Session's body)
  Phase phase_ = Phase::kOpen;
  Goaway goaway_ = Goaway::kNone;
  bool settings_seen_ = false;        // the client's preface and first SETTINGS arrived
  bool settings_advertised_ = false;  // our first SETTINGS went out (advertise_stream_limit)
  bool reading_paused_ = false;       // output backpressure (check_output_pressure)
  // The peer rules (peer_limits.h), one owner each.
  StreamCount stream_count_;
  ResetBudget peer_resets_;     // RST_STREAM frames the client sends (Rapid Reset)
  ResetBudget induced_resets_;  // RST_STREAM frames it makes us send (MadeYouReset)
  EmptyFrameRun empty_frames_;
  PingStrikes ping_strikes_;
  Keepalive keepalive_;
  loop::Timer keepalive_timer_;
  ClosedStreams closed_streams_;
  FrameScanner scanner_;
};

}  // namespace uringrpc::http2
