// nghttp2's events for a Session. Input callbacks file request heads and body chunks for
// the layer above, and feed each frame to the peer rule that owns it (stream count, reset
// budgets, empty frames, ping strikes, closed streams) at that very frame: a verdict to
// stop returns NGHTTP2_ERR_CALLBACK_FAILURE, so nghttp2 reads nothing after it. Output
// callbacks copy frame headers into the connection's queue and hand DATA payloads over by
// reference.
#include "http2/session_callbacks.h"

#include <cstring>
#include <vector>

#include "http2/field_memo.h"
#include "http2/nv_array.h"
#include "http2/session.h"

namespace uringrpc::http2 {
namespace {

// Rewrites SETTINGS_MAX_CONCURRENT_STREAMS in a serialized SETTINGS frame (see
// kNghttp2StreamCeiling in session.cc for why nghttp2 is told another value).
void advertise_stream_limit(uint8_t* frame, size_t len, uint32_t limit) {
  size_t payload = (size_t{frame[0]} << 16) | (size_t{frame[1]} << 8) | frame[2];
  for (size_t off = 9; off + 6 <= 9 + payload && off + 6 <= len; off += 6) {
    uint16_t id = static_cast<uint16_t>((frame[off] << 8) | frame[off + 1]);
    if (id != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) continue;
    frame[off + 2] = static_cast<uint8_t>(limit >> 24);
    frame[off + 3] = static_cast<uint8_t>(limit >> 16);
    frame[off + 4] = static_cast<uint8_t>(limit >> 8);
    frame[off + 5] = static_cast<uint8_t>(limit);
  }
}

constexpr int kStop = NGHTTP2_ERR_CALLBACK_FAILURE;

}  // namespace

void SessionCallbacks::install(nghttp2_session_callbacks* cbs) {
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback2(cbs, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data_chunk);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, &on_invalid_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &on_frame_send);
  nghttp2_session_callbacks_set_send_callback(cbs, &send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &send_data);
}

// Every field of a header block and every callback of a frame asks for the same stream:
// the last one found is remembered (nghttp2's lookup is a hash-map probe per call).
Stream* SessionCallbacks::stream(nghttp2_session* ng, int32_t id, void* user) {
  Session& s = self(user);
  if (id == s.last_stream_id_ && s.last_stream_) return s.last_stream_;
  auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(ng, id));
  if (st) {
    s.last_stream_id_ = id;
    s.last_stream_ = st;
  }
  return st;
}

int SessionCallbacks::on_begin_frame(nghttp2_session* ng, const nghttp2_frame_hd* hd, void* user) {
  Session& s = self(user);
  if (s.phase_ != Session::Phase::kOpen) return kStop;
  // DATA on a stream that is gone is judged before nghttp2 sees it (Session::on_bytes):
  // nghttp2 drops such DATA without a callback. A HEADERS frame past the last stream
  // nghttp2 opened opens a new one (ClosedStreams has nothing to say about it): only one
  // at or below it is looked up, so a request costs no stream-map probe here.
  if (hd->type == NGHTTP2_HEADERS && hd->stream_id > 0 &&
      hd->stream_id <= nghttp2_session_get_last_proc_stream_id(ng) && !nghttp2_session_find_stream(ng, hd->stream_id)) {
    if (int rv = s.on_frame_for_missing_stream(hd->stream_id, true)) return rv;
  }
  // nghttp2 calls this for DATA only on a stream that may receive it.
  if (hd->type == NGHTTP2_DATA) return s.judge_data_window(hd->stream_id, static_cast<uint32_t>(hd->length));
  // DATA's emptiness is judged in on_frame_recv, where its padding is known.
  if (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION) {
    if (int rv = s.act(s.empty_frames_.on_frame(hd->length == 0, hd->flags & NGHTTP2_FLAG_END_STREAM), 0)) {
      return rv;
    }
  }
  // With RFC 7540 priorities off nghttp2 skips PRIORITY frames unchecked; RFC 9113 6.3
  // still makes one on stream 0 a connection error.
  if (hd->type == NGHTTP2_PRIORITY && hd->stream_id == 0) {
    return s.act(Verdict::goaway(kProtocolError, "PRIORITY on stream 0"), 0);
  }
  return 0;
}

int SessionCallbacks::on_begin_headers(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  Session& s = self(user);
  if (s.phase_ != Session::Phase::kOpen) return kStop;
  // Every stream counts against the advertised limit, whatever answer it will get. A
  // refused one gets no Stream: its fields are decoded (HPACK state) and dropped.
  Verdict admitted = s.stream_count_.open();
  if (!admitted.fine()) return s.act(admitted, frame->hd.stream_id);
  auto* st = new Stream();
  st->id = frame->hd.stream_id;
  st->next = s.streams_;
  if (s.streams_) s.streams_->prev = st;
  s.streams_ = st;
  nghttp2_session_set_stream_user_data(ng, st->id, st);
  s.last_stream_id_ = st->id;
  s.last_stream_ = st;
  return 0;
}

int SessionCallbacks::on_header(nghttp2_session* ng, const nghttp2_frame* frame, nghttp2_rcbuf* name_buf,
                                nghttp2_rcbuf* value_buf, uint8_t, void* user) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* st = stream(ng, frame->hd.stream_id, user);
  if (!st) return 0;
  std::string_view n, v;
  FieldName kind;
  FieldFacts facts;
  FieldMemo& memo = FieldMemo::of_this_thread();
  if (const FieldMemo::Entry* e = memo.find(name_buf, value_buf)) {
    // Buffers of a field seen before (from the HPACK table): its bytes were judged then.
    n = e->name_bytes;
    v = e->value_bytes;
    kind = e->kind;
    facts = e->facts;
  } else {
    nghttp2_vec name = nghttp2_rcbuf_get_buf(name_buf), value = nghttp2_rcbuf_get_buf(value_buf);
    n = {reinterpret_cast<const char*>(name.base), name.len};
    v = {reinterpret_cast<const char*>(value.base), value.len};
    kind = classify_field(n);
    facts = judge_field(kind, n, v);
    if (FieldMemo::worth_remembering(kind) && !(facts.bits & FieldFacts::kBad)) {
      memo.remember(&self(user), name_buf, value_buf, n, v, kind, facts);
    }
  }
  bool trailer = frame->headers.cat != NGHTTP2_HCAT_REQUEST;
  // A malformed request is reset when its header block ends (on_frame_recv).
  if (!st->rules.on_judged_field(kind, facts, v, trailer)) return 0;
  // Request trailers: gRPC clients send none; keep nothing from them.
  if (trailer) return 0;
  // Counted before anything is copied: past the limit the request is refused and what
  // its HPACK block still expands to (an HPACK bomb) is only counted, never stored.
  st->header_bytes += n.size() + v.size() + 32;
  if (st->header_bytes > self(user).settings_.max_header_list_bytes) {
    st->headers_too_large = true;
    return 0;
  }
  RequestHead& h = st->head;
  switch (kind) {
    case FieldName::kMethod: h.hold(h.method, value_buf, v); break;
    case FieldName::kPath: h.hold(h.path, value_buf, v); break;
    case FieldName::kScheme: h.hold(h.scheme, value_buf, v); break;
    case FieldName::kAuthority: h.hold_authority(value_buf, v); break;
    case FieldName::kContentType: h.hold(h.content_type, value_buf, v); break;
    case FieldName::kTe: h.hold(h.te, value_buf, v); break;
    case FieldName::kGrpcTimeout:
      h.hold(h.grpc_timeout, value_buf, v);
      h.has_grpc_timeout = true;
      break;
    case FieldName::kGrpcEncoding: h.hold(h.grpc_encoding, value_buf, v); break;
    case FieldName::kGrpcAcceptEncoding: h.hold(h.grpc_accept_encoding, value_buf, v); break;
    case FieldName::kHost: h.hold_authority(value_buf, v); break;  // :authority, if any, came first
    default:
      // Room for a few at once (user-agent, content-length and some metadata), not a
      // reallocation and a move of every entry at the second and the third.
      if (h.metadata.empty()) h.metadata.reserve(4);
      h.metadata.emplace_back(name_buf, value_buf, n, v);
      break;
  }
  return 0;
}

int SessionCallbacks::on_request_headers(Session& s, Stream& st, bool end) {
  RequestRules& rules = st.rules;
  // Past the header list limit later fields were not checked; the rpc layer refuses the
  // request (RESOURCE_EXHAUSTED) instead.
  bool ok = st.headers_too_large ? !rules.malformed() : rules.on_head_end();
  if (!ok || (end && !rules.on_end_stream())) return s.reset_malformed(st);
  if (end) st.remote_closed = true;
  s.listener_.on_request(st, end);
  st.head.release();  // the rpc layer has read what it needs
  // The layer above may have reset the stream, and that reset may have emptied the budget.
  return s.phase_ == Session::Phase::kOpen ? 0 : kStop;
}

int SessionCallbacks::on_frame_recv(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
  Session& s = self(user);
  if (s.phase_ != Session::Phase::kOpen) return kStop;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
      if (int rv = s.act(s.empty_frames_.on_frame(false, end), 0)) return rv;
      Stream* st = stream(ng, frame->hd.stream_id, user);
      if (!st) return 0;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) return on_request_headers(s, *st, end);
      // Trailers end the request (RFC 9113 8.1).
      if (!end || !st->rules.on_end_stream()) return s.reset_malformed(*st);
      st->remote_closed = true;
      s.listener_.on_request_end(*st);
      return 0;
    }
    case NGHTTP2_DATA: {
      bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
      if (int rv = s.act(s.empty_frames_.on_frame(frame->hd.length <= frame->data.padlen, end), 0)) return rv;
      if (!end) return 0;
      Stream* st = stream(ng, frame->hd.stream_id, user);
      if (!st) return 0;
      if (!st->rules.on_end_stream()) return s.reset_malformed(*st);
      st->remote_closed = true;
      s.listener_.on_request_end(*st);
      return 0;
    }
    case NGHTTP2_SETTINGS:
      if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !s.settings_seen_) {
        s.settings_seen_ = true;  // the preface was valid: nghttp2 checked it before this
        if (s.conn_) s.conn_->handshake_complete();
      }
      return 0;
    case NGHTTP2_RST_STREAM:
      if (Stream* st = stream(ng, frame->hd.stream_id, user)) st->peer_reset = true;
      return s.act(s.peer_resets_.charge(s.now_ms()), 0);
    case NGHTTP2_PING:
      if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        // Judged before it is answered: the ping that strikes out gets the GOAWAY, no ACK.
        if (int rv = s.act(s.ping_strikes_.on_ping(s.now_ms(), s.stream_count_.open_streams() > 0), 0)) return rv;
        nghttp2_submit_ping(ng, NGHTTP2_FLAG_ACK, frame->ping.opaque_data);
        return 0;
      }
      if (std::memcmp(frame->ping.opaque_data, Session::kKeepalivePingOpaque, 8) == 0) {
        s.apply_keepalive(s.keepalive_.on_ack(s.now_ms()));
        return 0;
      }
      if (s.goaway_ == Session::Goaway::kNotice &&
          std::memcmp(frame->ping.opaque_data, Session::kShutdownPingOpaque, 8) == 0) {
        s.goaway_ = Session::Goaway::kFinal;
        nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng),
                              NGHTTP2_NO_ERROR, nullptr, 0);
      }
      return 0;
    default:
      return 0;
  }
}

int SessionCallbacks::on_data_chunk(nghttp2_session* ng, uint8_t flags, int32_t id, const uint8_t* data,
                                    size_t len, void* user) {
  Session& s = self(user);
  if (s.phase_ != Session::Phase::kOpen) return kStop;
  Stream* st = stream(ng, id, user);
  if (st && (flags & NGHTTP2_FLAG_END_STREAM)) st->last_data = true;
  if (st && !st->rules.malformed() && !st->rules.on_data(len)) {
    if (int rv = s.reset_malformed(*st)) return rv;
  }
  if (!st || !st->upper || st->rules.malformed()) {
    // Nobody will read it: give the window back now.
    nghttp2_session_consume(ng, id, len);
    return 0;
  }
  const Bytes* in = s.input_;
  if (in && data >= in->data() && data + len <= in->data() + in->size()) {
    s.listener_.on_request_data(*st, in->slice(static_cast<size_t>(data - in->data()), len));
  } else {
    s.listener_.on_request_data(*st, Bytes::copy({reinterpret_cast<const char*>(data), len}));
  }
  return 0;
}

int SessionCallbacks::on_invalid_frame(nghttp2_session* ng, const nghttp2_frame* frame, int, void* user) {
  // nghttp2 found a stream error of its own (a WINDOW_UPDATE of 0 on a stream, ...) and
  // queued RST_STREAM: a reset the peer made us send, charged at its frame. (Connection
  // errors come here too, on their way to nghttp2's own GOAWAY.)
  Session& s = self(user);
  if (frame->hd.stream_id == 0 || s.phase_ != Session::Phase::kOpen || !nghttp2_session_want_read(ng)) return 0;
  Verdict budget = s.induced_resets_.charge(s.now_ms());
  if (!budget.fine()) return s.act(budget, frame->hd.stream_id);
  if (Stream* st = stream(ng, frame->hd.stream_id, user)) st->reset_charged = true;
  return 0;
}

int SessionCallbacks::on_stream_close(nghttp2_session* ng, int32_t id, uint32_t error_code, void* user) {
  Session& s = self(user);
  Stream* st = stream(ng, id, user);
  // A stream without a Stream was refused: the peer may still be sending on it.
  s.closed_streams_.remember(id, !st                ? ClosedStreams::How::kWeReset
                                 : st->peer_reset   ? ClosedStreams::How::kPeerReset
                                 : st->remote_closed ? ClosedStreams::How::kPeerEnded
                                                     : ClosedStreams::How::kWeReset);
  if (!st) return 0;
  // No need to clear the stream's user data (a stream-map probe): with RFC 7540
  // priorities off (SETTINGS_NO_RFC7540_PRIORITIES, no fallback option) nghttp2 keeps no
  // closed stream in a dependency tree and frees this one as soon as we return.
  s.stream_count_.close();
  s.close_stream(st, error_code);
  return 0;
}

int SessionCallbacks::on_frame_send(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
  Session& s = self(user);
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    // Resets with an error are charged at the frame that caused them: ours when we
    // decide on them, nghttp2's in on_invalid_frame and judge_data. Any other one nghttp2
    // sends on a stream of ours is charged as it goes out, so none goes uncounted.
    Stream* st = stream(ng, frame->hd.stream_id, user);
    if (frame->rst_stream.error_code != NGHTTP2_NO_ERROR && st && !st->reset_charged) {
      st->reset_charged = true;
      Verdict budget = s.induced_resets_.charge(s.now_ms());
      if (!budget.fine()) s.fail_connection(budget.h2_error, budget.debug);
    }
    return 0;
  }
  if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) return 0;
  // Sending a response is what makes a client's pings legitimate (gRPC core's rule).
  s.ping_strikes_.forgive();
  if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  Stream* st = stream(ng, frame->hd.stream_id, user);
  if (!st) return 0;
  // Our side ended, by trailers or by the last DATA of a complete answer.
  st->local_closed = true;
  // The response is complete but the client is still sending: end the stream so its
  // state is freed now (what gRPC servers do: RST_STREAM NO_ERROR after trailers).
  if (!st->remote_closed) nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
  return 0;
}

ssize_t SessionCallbacks::send(nghttp2_session*, const uint8_t* data, size_t len, int, void* user) {
  Session& s = self(user);
  if (!s.out_) return NGHTTP2_ERR_WOULDBLOCK;
  if (s.out_->bytes() >= s.budget_) return NGHTTP2_ERR_WOULDBLOCK;
  if (!s.settings_advertised_ && len >= 9 && data[3] == NGHTTP2_SETTINGS && !(data[4] & NGHTTP2_FLAG_ACK)) {
    // Our first SETTINGS frame: it goes out whole (nghttp2 hands over one frame per call).
    s.settings_advertised_ = true;
    std::vector<uint8_t> frame(data, data + len);
    advertise_stream_limit(frame.data(), frame.size(), s.settings_.max_concurrent_streams);
    s.out_->append_copy(frame.data(), frame.size());
    return static_cast<ssize_t>(len);
  }
  s.out_->append_copy(data, len);
  return static_cast<ssize_t>(len);
}

int SessionCallbacks::send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                                nghttp2_data_source* source, void* user) {
  Session& s = self(user);
  if (!s.out_ || s.out_->bytes() >= s.budget_) return NGHTTP2_ERR_WOULDBLOCK;
  auto* st = static_cast<Stream*>(source->ptr);
  s.out_->append_copy(framehd, 9);
  size_t padlen = frame->data.padlen;
  if (padlen > 0) {
    uint8_t pad_length = static_cast<uint8_t>(padlen - 1);
    s.out_->append_copy(&pad_length, 1);
  }
  st->body->body_emit(length, *s.out_);
  if (padlen > 1) {
    static const uint8_t kZeros[256] = {};
    s.out_->append_copy(kZeros, padlen - 1);
  }
  return 0;
}

ssize_t SessionCallbacks::read_body(nghttp2_session* ng, int32_t id, uint8_t*, size_t length, uint32_t* flags,
                                    nghttp2_data_source* source, void*) {
  auto* st = static_cast<Stream*>(source->ptr);
  bool eof = false;
  size_t n = st->body->body_ready(length, &eof);
  if (n == 0 && !eof) return NGHTTP2_ERR_DEFERRED;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (const FixedHeaders* fixed = st->body->body_fixed_trailers()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      nghttp2_submit_trailer(ng, id, fixed->data(), fixed->size());
      return static_cast<ssize_t>(n);
    }
    static thread_local HeaderList trailers;  // reused by every call of the shard: no block each
    trailers.clear();
    st->body->body_trailers(trailers);
    if (trailers.empty()) return static_cast<ssize_t>(n);  // END_STREAM rides on this DATA
    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    NvArray nva(trailers);
    nghttp2_submit_trailer(ng, id, nva.data(), nva.size());
  }
  return static_cast<ssize_t>(n);
}

}  // namespace uringrpc::http2
