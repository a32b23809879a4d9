// What a Session holds its peer to, beyond what nghttp2 checks itself: ping strikes,
// runs of empty frames, the resets a peer makes us send (MadeYouReset), output that
// piles up unread, and keepalive pings for peers that went silent. A peer over a limit
// gets GOAWAY ENHANCE_YOUR_CALM with a debug text naming the limit, as gRPC core does.
#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "base/small_pool.h"
#include "http2/session.h"

namespace uringrpc::http2 {

uint64_t Session::now_ms() const {
  // The wheel's time is that of the loop's last wake-up: exact enough for limits counted
  // in seconds, and free (no clock read per frame).
  return timers_ ? timers_->now_ms() : loop::TimerWheel::monotonic_now_ms();
}

void Session::fail_connection(uint32_t h2_error, std::string_view debug) {
  if (failed_ || closed_ || !conn_) return;
  failed_ = true;
  final_goaway_sent_ = true;
  URINGRPC_LOG(base::LogLevel::kInfo, "%s: GOAWAY %s (%.*s)", peer().c_str(), nghttp2_http2_strerror(h2_error),
               static_cast<int>(debug.size()), debug.data());
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_), h2_error,
                        reinterpret_cast<const uint8_t*>(debug.data()), debug.size());
  conn_->close_after_flush();
}

void Session::on_client_ping() {
  if (settings_.max_ping_strikes == 0) return;
  uint64_t now = now_ms();
  // With no call open a client has far less reason to ping (gRPC core's 2 h rule).
  uint64_t min_interval = open_streams_ > 0 ? settings_.min_ping_interval_ms : settings_.min_ping_interval_idle_ms;
  if (have_last_ping_ && now - last_ping_ms_ < min_interval && ++ping_strikes_ > settings_.max_ping_strikes) {
    fail_connection(NGHTTP2_ENHANCE_YOUR_CALM, "too_many_pings");
  }
  have_last_ping_ = true;
  last_ping_ms_ = now;
}

void Session::count_frame_payload(bool empty, bool end_stream) {
  if (!empty || end_stream) {
    empty_frames_ = 0;
    return;
  }
  if (settings_.max_empty_frames > 0 && ++empty_frames_ > settings_.max_empty_frames) {
    fail_connection(NGHTTP2_ENHANCE_YOUR_CALM, "too_many_empty_frames");
  }
}

void Session::charge_reset() {
  if (settings_.reset_burst == 0) return;
  uint64_t now = now_ms();
  double refill = static_cast<double>(now - reset_refill_ms_) * settings_.reset_refill_per_second / 1000.0;
  reset_tokens_ = std::min<double>(settings_.reset_burst, reset_tokens_ + refill);
  reset_refill_ms_ = now;
  if (reset_tokens_ < 1) {
    fail_connection(NGHTTP2_ENHANCE_YOUR_CALM, "too_many_resets");
    return;
  }
  reset_tokens_ -= 1;
}

void Session::check_output_pressure() {
  if (!conn_ || closed_) return;
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

void Session::remember_closed(int32_t id, ClosedHow how) {
  if (!closed_spill_ && closed_next_ == kClosedInline) {
    // The inline records are full: move to the big ring (they fill it from its start).
    closed_spill_ = static_cast<ClosedStream*>(base::pool_allocate(kClosedMemory * sizeof(ClosedStream)));
    std::memset(static_cast<void*>(closed_spill_), 0, kClosedMemory * sizeof(ClosedStream));
    std::memcpy(static_cast<void*>(closed_spill_), closed_inline_, sizeof closed_inline_);
  }
  closed_records()[closed_next_] = {id, how};
  // Inline records fill up in order (the next one after them spills); the big ring wraps.
  closed_next_ = static_cast<uint8_t>(closed_spill_ ? (closed_next_ + 1) % kClosedMemory : closed_next_ + 1);
}

void Session::forget_closed_streams() {
  if (!closed_spill_ && closed_next_ == 0) return;  // nothing remembered
  if (closed_spill_) base::pool_deallocate(closed_spill_, kClosedMemory * sizeof(ClosedStream));
  closed_spill_ = nullptr;
  std::memset(static_cast<void*>(closed_inline_), 0, sizeof closed_inline_);
  closed_next_ = 0;
  forgotten_through_ = ng_ ? nghttp2_session_get_last_proc_stream_id(ng_) : 0;
}

void Session::on_frame_for_missing_stream(const nghttp2_frame_hd& hd) {
  if (failed_ || closed_) return;
  int32_t id = hd.stream_id;
  // Above the last stream the client opened, a HEADERS opens a new one; nghttp2 judges it.
  if (id > nghttp2_session_get_last_proc_stream_id(ng_)) return;
  const ClosedStream* records = closed_records();
  for (size_t i = 0; i < closed_capacity(); ++i) {
    const ClosedStream& c = records[i];
    if (c.id != id) continue;
    switch (c.how) {
      case ClosedHow::kPeerReset:  // RFC 9113 5.1: after its own RST_STREAM
        nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_STREAM_CLOSED);
        request_flush();
        return;
      case ClosedHow::kBothEnded:  // after its END_STREAM: a connection error
        fail_connection(NGHTTP2_STREAM_CLOSED, "frame on a closed stream");
        return;
      case ClosedHow::kWeReset:  // it may not have seen our RST_STREAM yet: ignore
        return;
    }
  }
  // An identifier below one already used that we never saw is closed without having been
  // opened (RFC 9113 5.1.1): a new request on it is a connection error.
  if (hd.type == NGHTTP2_HEADERS && id > oldest_remembered_id()) {
    fail_connection(NGHTTP2_PROTOCOL_ERROR, "HEADERS on a stream identifier already passed");
  }
}

void Session::apply_skipped_rules(const Bytes& data) {
  const uint8_t* p = data.data();
  size_t left = data.size();
  while (left > 0 && !failed_ && !closed_) {
    FrameScanner::Found found;
    size_t used = scanner_.scan(p, left, &found);
    p += used;
    left -= used;
    if (found.kind == FrameScanner::Found::kData && !nghttp2_session_find_stream(ng_, found.stream)) {
      nghttp2_frame_hd hd{};
      hd.type = NGHTTP2_DATA;
      hd.stream_id = found.stream;
      on_frame_for_missing_stream(hd);
    } else if (found.kind == FrameScanner::Found::kPrioritySelfDependency) {
      fail_connection(NGHTTP2_PROTOCOL_ERROR, "stream depends on itself");
    }
    if (used == 0) break;
  }
}

int32_t Session::oldest_remembered_id() const {
  // Streams older than what we remember may be ones we reset long ago: give them the
  // benefit of the doubt.
  const ClosedStream* records = closed_records();
  int32_t oldest = 0;
  bool any = false;
  for (size_t i = 0; i < closed_capacity(); ++i) {
    const ClosedStream& c = records[i];
    // Not full: we remember every stream closed since the records were last dropped.
    if (c.id == 0) return forgotten_through_;
    if (!any || c.id < oldest) oldest = c.id;
    any = true;
  }
  return std::max(oldest, forgotten_through_);
}

void Session::arm_keepalive(uint64_t at_ms) {
  if (timers_) timers_->arm(keepalive_timer_, at_ms);
}

void Session::keepalive_fired(void* self) {
  auto& s = *static_cast<Session*>(self);
  if (s.closed_ || !s.conn_) return;
  uint64_t now = s.now_ms();
  if (s.keepalive_outstanding_) {
    URINGRPC_LOG(base::LogLevel::kInfo, "%s: keepalive ping not acknowledged in %lu ms; closing", s.peer().c_str(),
                 static_cast<unsigned long>(s.settings_.keepalive_timeout_ms));
    s.close_now();
    return;
  }
  if (now - s.last_read_ms_ < s.settings_.keepalive_time_ms) {
    s.arm_keepalive(s.last_read_ms_ + s.settings_.keepalive_time_ms);
    return;
  }
  s.keepalive_outstanding_ = true;
  nghttp2_submit_ping(s.ng_, NGHTTP2_FLAG_NONE, kKeepalivePingOpaque);
  s.arm_keepalive(now + s.settings_.keepalive_timeout_ms);
  s.request_flush();
}

void Session::on_keepalive_ack() {
  if (!keepalive_outstanding_) return;
  keepalive_outstanding_ = false;
  arm_keepalive(now_ms() + settings_.keepalive_time_ms);
}

}  // namespace uringrpc::http2
