// When a Session's memory may be given back while it idles: nghttp2's frame buffer (see
// SessionMemory::trim) and the records of closed streams. The sweep calls on_idle_period;
// tests call trim_idle_memory directly.
#include "http2/session.h"

namespace uringrpc::http2 {

bool Session::quiet_for_trim() const {
  const Session& s = *this;
  // want_write() == 0 means no frame is half-sent (nghttp2's active item is gone, and its
  // frame buffer was reset); our queue being empty means the last bytes left too (they
  // were copied out of nghttp2's buffer anyway). Open streams keep a session busy even
  // when its DATA is deferred, so a handler's response is never the first thing to run
  // into a dropped page.
  return s.conn_ && !s.closed_ && s.open_streams_ == 0 && s.conn_->queued_output_bytes() == 0 &&
         !nghttp2_session_want_write(s.ng_);
}

size_t Session::trim_idle_memory() {
  if (!quiet_for_trim()) return 0;
  // No frame has arrived for a sweep period: whatever was in flight when a stream closed
  // has long arrived, which is what the records of closed streams are for.
  forget_closed_streams();
  return mem_.trim();
}

bool Session::on_idle_period(void* self) {
  auto& s = *static_cast<Session*>(self);
  if (!s.quiet_for_trim()) return false;
  s.trim_idle_memory();
  return true;
}

}  // namespace uringrpc::http2
