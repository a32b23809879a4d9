// Session: an nghttp2 server session over one transport (a socket Connection, or an
// in-memory one in tests and fuzzers). Bytes in through
// nghttp2_session_mem_recv, frames out through nghttp2_session_send into the
// connection's output queue (DATA payloads by reference, NGHTTP2_DATA_FLAG_NO_COPY).
// Requests go up to a StreamListener registered by the rpc layer.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>

#include "http2/stream.h"
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

struct SessionSettings {
  uint32_t max_concurrent_streams = 100;
  uint32_t stream_window_bytes = 1u << 20;
  uint32_t connection_window_bytes = 16u << 20;
  uint32_t max_header_list_bytes = 16u << 10;
};

class Session final : public transport::ConnectionHandler {
 public:
  Session(transport::Transport& conn, const SessionSettings& settings, StreamListener& listener);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // --- for the rpc layer
  // Response headers; with a body source the stream stays open for DATA and trailers,
  // without one the HEADERS frame carries END_STREAM (gRPC Trailers-Only).
  bool submit_headers(Stream& s, const HeaderList& headers, ResponseBody* body);
  void resume_body(Stream& s);
  void reset(Stream& s, uint32_t h2_error);
  // Returns flow-control window for n received body bytes the application has taken.
  void consume(Stream& s, size_t n);
  // Double GOAWAY: a notice with last-stream-id 2^31-1 and a PING, the final GOAWAY
  // when the PING's ack arrives; the connection closes once no stream is left.
  void start_graceful_shutdown();
  bool shutting_down() const { return shutdown_started_; }
  void close_now();
  // Final GOAWAY (if not sent yet), then close once everything queued is out.
  void close_after_flush();
  const std::string& peer() const { return peer_; }
  size_t open_streams() const { return open_streams_; }
  void request_flush() {
    if (conn_) conn_->request_flush();
  }

  // --- transport::ConnectionHandler
  bool on_bytes(const Bytes& data) noexcept override;
  void produce_output(transport::OutputQueue& out, size_t budget) noexcept override;
  void on_closed() noexcept override;

 private:
  friend struct SessionCallbacks;
  void check_done();

  transport::Transport* conn_;
  StreamListener& listener_;
  std::string peer_;  // kept: calls may ask after the transport is gone
  nghttp2_session* ng_ = nullptr;
  const Bytes* input_ = nullptr;           // the chunk mem_recv is parsing (for zero-copy slices)
  transport::OutputQueue* out_ = nullptr;  // where produce_output is writing
  size_t budget_ = 0;
  size_t open_streams_ = 0;
  Stream* streams_ = nullptr;  // intrusive list head; notified one by one when the transport goes
  bool shutdown_started_ = false;
  bool final_goaway_sent_ = false;
  bool closed_ = false;
};

}  // namespace uringrpc::http2
