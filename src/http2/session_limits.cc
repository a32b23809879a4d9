// How a Session carries out the peer rules' verdicts (peer_limits.h, closed_streams.h):
// a stream error becomes RST_STREAM, charged to the induced-reset budget at the frame that
// caused it; a connection error becomes GOAWAY with a debug text naming the limit, after
// which nothing more is read. Also output backpressure and the keepalive timer.
#include <algorithm>
#include <cstring>

#include "http2/session.h"
#include "base/log.h"

namespace uringrpc::http2 {

uint64_t Session::now_ms() const {
  // The wheel's time is that of the loop's last wake-up: exact enough for limits counted
  // in seconds, and free (no clock read per frame).
  return timers_ ? timers_->now_ms() : loop::TimerWheel::monotonic_now_ms();
}

void Session::fail_connection(uint32_t h2_error, std::string_view debug) {
  if (phase_ != Phase::kOpen || !conn_) return;
  phase_ = Phase::kFailed;
  goaway_ = Goaway::kFinal;
  URINGRPC_LOG(base::LogLevel::kInfo, "%s: GOAWAY %s (%.*s)", peer().c_str(), nghttp2_http2_strerror(h2_error),
               static_cast<int>(debug.size()), debug.data());
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_), h2_error,
                        reinterpret_cast<const uint8_t*>(debug.data()), debug.size());
  conn_->close_after_flush();
}

int Session::act_on(Verdict v, int32_t stream) {
  switch (v.kind) {
    case Verdict::kContinue:
      return 0;
    case Verdict::kResetStream:
      return reset_stream(stream, v.h2_error);
    case Verdict::kGoaway:
      fail_connection(v.h2_error, v.debug);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int Session::reset_stream(int32_t stream, uint32_t h2_error) {
  Verdict budget = induced_resets_.charge(now_ms());
  if (!budget.fine()) return act(budget, stream);  // the reset that finds it empty is not sent
  if (auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(ng_, stream))) st->reset_charged = true;
  nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, stream, h2_error);
  request_flush();
  return 0;
}

int Session::judge_missing_data(int32_t stream) {
  // The stream the last header block opened is open (the usual DATA after HEADERS): no
  // lookup. A refused stream has no Stream but is still open in nghttp2 until its reset.
  if (stream == last_stream_id_ && last_stream_) return 0;
  if (nghttp2_session_find_stream(ng_, stream)) return 0;
  return on_frame_for_missing_stream(stream, false);
}

int Session::judge_data_window(int32_t stream, uint32_t length) {
  if (length <= static_cast<uint32_t>(std::max(0, nghttp2_session_get_stream_local_window_size(ng_, stream)))) {
    return 0;
  }
  // nghttp2 will answer RST_STREAM FLOW_CONTROL_ERROR: a reset the peer made us send.
  Verdict budget = induced_resets_.charge(now_ms());
  if (!budget.fine()) return act(budget, stream);
  if (auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(ng_, stream))) st->reset_charged = true;
  return 0;
}

int Session::reset_malformed(Stream& st) {
  // Once per stream, however many of its frames break the rules before the reset goes out.
  if (st.malformed_reset) return 0;
  st.malformed_reset = true;
  return reset_stream(st.id, NGHTTP2_PROTOCOL_ERROR);
}

int Session::on_frame_for_missing_stream(int32_t stream, bool headers) {
  if (phase_ != Phase::kOpen) return NGHTTP2_ERR_CALLBACK_FAILURE;
  return act(closed_streams_.on_frame(stream, headers, nghttp2_session_get_last_proc_stream_id(ng_)), stream);
}

void Session::check_output_pressure() {
  if (!conn_ || phase_ == Phase::kClosed) return;
  // Frames nghttp2 holds (ACKs, resets, headers; DATA is pulled, never queued) and bytes
  // the kernel has not taken: a peer that sends but does not read grows both.
  bool over = nghttp2_session_get_outbound_queue_size(ng_) > settings_.max_queued_output_frames ||
              conn_->queued_output_bytes() > settings_.max_queued_output_bytes;
  if (over && !reading_paused_) {
    reading_paused_ = true;
    conn_->pause_reading();
  } else if (!over && reading_paused_) {
    reading_paused_ = false;
    conn_->resume_reading();
  }
}

void Session::apply_keepalive(Keepalive::Step step) {
  switch (step.what) {
    case Keepalive::Step::kNothing:
      return;
    case Keepalive::Step::kClose:
      URINGRPC_LOG(base::LogLevel::kInfo, "%s: keepalive ping not acknowledged in %lu ms; closing", peer().c_str(),
                   static_cast<unsigned long>(keepalive_.timeout_ms()));
      close_now();
      return;
    case Keepalive::Step::kPingAndArm:
      nghttp2_submit_ping(ng_, NGHTTP2_FLAG_NONE, kKeepalivePingOpaque);
      request_flush();
      [[fallthrough]];
    case Keepalive::Step::kArm:
      if (timers_) timers_->arm(keepalive_timer_, step.at_ms);
      return;
  }
}

void Session::keepalive_fired(void* self) {
  auto& s = *static_cast<Session*>(self);
  if (s.phase_ == Phase::kClosed || !s.conn_) return;
  s.apply_keepalive(s.keepalive_.on_timer(s.now_ms()));
}

}  // namespace uringrpc::http2
