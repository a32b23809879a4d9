// SessionCallbacks: nghttp2's callbacks for a Session, each translating one nghttp2 event
// into StreamListener calls, peer-rule events (peer_limits.h, closed_streams.h) or output.
// Registered by Session's constructor; user_data is the Session.
#pragma once

#include <nghttp2/nghttp2.h>
#include <sys/types.h>

#include <cstdint>

namespace uringrpc::http2 {

class Session;
struct Stream;

struct SessionCallbacks {
  static void install(nghttp2_session_callbacks* cbs);

  // Input: frames as nghttp2 parses them.
  static int on_begin_frame(nghttp2_session* ng, const nghttp2_frame_hd* hd, void* user);
  static int on_begin_headers(nghttp2_session* ng, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session* ng, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, uint8_t flags, void* user);
  static int on_frame_recv(nghttp2_session* ng, const nghttp2_frame* frame, void* user);
  static int on_data_chunk(nghttp2_session* ng, uint8_t flags, int32_t id, const uint8_t* data, size_t len,
                           void* user);
  static int on_invalid_frame(nghttp2_session* ng, const nghttp2_frame* frame, int lib_error, void* user);
  static int on_stream_close(nghttp2_session* ng, int32_t id, uint32_t error_code, void* user);

  // Output: frames into the connection's queue, DATA payloads by reference.
  static int on_frame_send(nghttp2_session* ng, const nghttp2_frame* frame, void* user);
  static ssize_t send(nghttp2_session* ng, const uint8_t* data, size_t len, int flags, void* user);
  static int send_data(nghttp2_session* ng, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                       nghttp2_data_source* source, void* user);
  // The data provider of every response body (Session::submit_headers).
  static ssize_t read_body(nghttp2_session* ng, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void* user);

 private:
  static Session& self(void* user) { return *static_cast<Session*>(user); }
  static Stream* stream(nghttp2_session* ng, int32_t id, void* user);
  static int on_request_headers(Session& s, Stream& st, bool end);
};

}  // namespace uringrpc::http2
