// When a Session's memory may be given back while it idles: nghttp2's frame buffer (see
// SessionMemory::trim) and the records of closed streams. The sweep calls on_idle_period;
// tests call trim_idle_memory directly.
#include "http2/session.h"

namespace uringrpc::http2 {

bool Session::quiet_for_trim() const {
  // want_write() == 0 means no frame is half-sent (nghttp2's active item is gone, and its
  // frame buffer was reset); our queue being empty means the last bytes left too (they
  // were copied out of nghttp2's buffer anyway). Open streams keep a session busy even
  // when its DATA is deferred, so a handler's response is never the first thing to run
  // into a dropped page.
  return conn_ && phase_ != Phase::kClosed && !streams_ && conn_->queued_output_bytes() == 0 &&
         !nghttp2_session_want_write(ng_);
}

size_t Session::trim_now() {
  // No frame has arrived for a sweep period: whatever was in flight when a stream closed
  // has long arrived, which is what the records of closed streams are for.
  closed_streams_.forget_all(nghttp2_session_get_last_proc_stream_id(ng_));
  return mem_.trim();
}

size_t Session::trim_idle_memory() { return quiet_for_trim() ? trim_now() : 0; }

bool Session::on_idle_period(void* self) {
  auto& s = *static_cast<Session*>(self);
  if (!s.quiet_for_trim()) return false;
  s.trim_now();
  return true;
}

}  // namespace uringrpc::http2
