// nghttp2 glue: callbacks translate frames into StreamListener calls; the data source
// hands DATA payloads to the output queue by reference.
#include "http2/session.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/log.h"

namespace uringrpc::http2 {
namespace {

constexpr uint8_t kShutdownPingOpaque[8] = {'u', 'r', 'p', 'c', 's', 't', 'o', 'p'};

// nghttp2 treats a stream beyond the *acknowledged* SETTINGS_MAX_CONCURRENT_STREAMS as a
// connection error, which would end every good stream of a client that overshoots once.
// So nghttp2 is told this ceiling while the SETTINGS frame on the wire advertises ours,
// and the rpc layer refuses the excess stream alone with REFUSED_STREAM (RFC 9113 5.1.2).
constexpr uint32_t kNghttp2StreamCeiling = (1u << 31) - 1;

// Rewrites SETTINGS_MAX_CONCURRENT_STREAMS in a serialized SETTINGS frame.
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

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

// nghttp2 copies the field list it is given, so it only has to outlive the submit call:
// on the stack for the few fields a gRPC response has, pooled beyond that.
class NvArray {
 public:
  explicit NvArray(const HeaderList& fields) : size_(fields.size()) {
    if (size_ > kInline) spill_.resize(size_);
    nghttp2_nv* out = data();
    for (size_t i = 0; i < size_; ++i) out[i] = make_nv(fields[i].name, fields[i].value);
  }
  nghttp2_nv* data() { return size_ > kInline ? spill_.data() : inline_; }
  size_t size() const { return size_; }

 private:
  static constexpr size_t kInline = 8;
  size_t size_;
  nghttp2_nv inline_[kInline];
  std::vector<nghttp2_nv, base::PoolAllocator<nghttp2_nv>> spill_;
};

}  // namespace

struct SessionCallbacks {
  static Session& self(void* user) { return *static_cast<Session*>(user); }
  // Every field of a header block and every callback of a frame asks for the same stream:
  // the last one found is remembered (nghttp2's lookup is a hash-map probe per call).
  static Stream* stream(nghttp2_session* ng, int32_t id, void* user) {
    Session& s = self(user);
    if (id == s.last_stream_id_ && s.last_stream_) return s.last_stream_;
    auto* st = static_cast<Stream*>(nghttp2_session_get_stream_user_data(ng, id));
    if (st) {
      s.last_stream_id_ = id;
      s.last_stream_ = st;
    }
    return st;
  }

  static int on_begin_frame(nghttp2_session* ng, const nghttp2_frame_hd* hd, void* user) {
    if ((hd->type == NGHTTP2_DATA || hd->type == NGHTTP2_HEADERS) && hd->stream_id > 0 &&
        !nghttp2_session_find_stream(ng, hd->stream_id)) {
      self(user).on_frame_for_missing_stream(*hd);
    }
    // DATA is judged in on_frame_recv, where its padding is known.
    if (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION) {
      self(user).count_frame_payload(hd->length == 0, hd->flags & NGHTTP2_FLAG_END_STREAM);
    }
    // With RFC 7540 priorities off nghttp2 skips PRIORITY frames unchecked; RFC 9113 6.3
    // still makes one on stream 0 a connection error.
    if (hd->type == NGHTTP2_PRIORITY && hd->stream_id == 0) {
      self(user).fail_connection(NGHTTP2_PROTOCOL_ERROR, "PRIORITY on stream 0");
    }
    return 0;
  }

  static int on_begin_headers(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Session& s = self(user);
    auto* st = new Stream();
    st->id = frame->hd.stream_id;
    st->next = s.streams_;
    if (s.streams_) s.streams_->prev = st;
    s.streams_ = st;
    ++s.open_streams_;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    s.last_stream_id_ = st->id;
    s.last_stream_ = st;
    return 0;
  }

  static int on_header(nghttp2_session* ng, const nghttp2_frame* frame, nghttp2_rcbuf* name_buf,
                       nghttp2_rcbuf* value_buf, uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* st = stream(ng, frame->hd.stream_id, user);
    if (!st) return 0;
    nghttp2_vec name = nghttp2_rcbuf_get_buf(name_buf), value = nghttp2_rcbuf_get_buf(value_buf);
    std::string_view n(reinterpret_cast<const char*>(name.base), name.len);
    std::string_view v(reinterpret_cast<const char*>(value.base), value.len);
    bool trailer = frame->headers.cat != NGHTTP2_HCAT_REQUEST;
    FieldName kind = classify_field(n);
    // A malformed request is reset when its header block ends (on_frame_recv).
    if (!st->rules.on_field(kind, n, v, trailer)) return 0;
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
      case FieldName::kMethod: h.hold(h.method, value_buf); break;
      case FieldName::kPath: h.hold(h.path, value_buf); break;
      case FieldName::kScheme: h.hold(h.scheme, value_buf); break;
      case FieldName::kAuthority: h.hold(h.authority, value_buf); break;
      case FieldName::kContentType: h.hold(h.content_type, value_buf); break;
      case FieldName::kTe: h.hold(h.te, value_buf); break;
      case FieldName::kGrpcTimeout:
        h.hold(h.grpc_timeout, value_buf);
        h.has_grpc_timeout = true;
        break;
      case FieldName::kGrpcEncoding: h.hold(h.grpc_encoding, value_buf); break;
      case FieldName::kHost: h.hold(h.authority, value_buf); break;  // :authority, if any, came first
      default: h.metadata.emplace_back(PooledString(n), PooledString(v)); break;
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
    Session& s = self(user);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        Stream* st = stream(ng, frame->hd.stream_id, user);
        if (!st) return 0;
        bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        s.count_frame_payload(false, end);
        RequestRules& rules = st->rules;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          // Past the header list limit later fields were not checked; the rpc layer
          // refuses the request (RESOURCE_EXHAUSTED) instead.
          bool ok = st->headers_too_large ? !rules.malformed() : rules.on_head_end();
          if (!ok || (end && !rules.on_end_stream())) return s.reset_malformed(*st);
          if (end) st->remote_closed = true;
          s.listener_.on_request(*st, end);
          st->head.release();  // the rpc layer has read what it needs
        } else {
          // Trailers end the request (RFC 9113 8.1).
          if (!end || !rules.on_end_stream()) return s.reset_malformed(*st);
          st->remote_closed = true;
          s.listener_.on_request_end(*st);
        }
        return 0;
      }
      case NGHTTP2_DATA: {
        bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        s.count_frame_payload(frame->hd.length <= frame->data.padlen, end);
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
        s.charge_reset();
        return 0;
      case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
          s.on_client_ping();
          return 0;
        }
        if (std::memcmp(frame->ping.opaque_data, Session::kKeepalivePingOpaque, 8) == 0) {
          s.on_keepalive_ack();
          return 0;
        }
        if (s.shutdown_started_ && !s.final_goaway_sent_ &&
            std::memcmp(frame->ping.opaque_data, kShutdownPingOpaque, 8) == 0) {
          s.final_goaway_sent_ = true;
          nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng),
                                NGHTTP2_NO_ERROR, nullptr, 0);
        }
        return 0;
      default:
        return 0;
    }
  }

  static int on_data_chunk(nghttp2_session* ng, uint8_t, int32_t id, const uint8_t* data, size_t len,
                           void* user) {
    Session& s = self(user);
    Stream* st = stream(ng, id, user);
    if (st && !st->rules.malformed() && !st->rules.on_data(len)) s.reset_malformed(*st);
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

  static int on_stream_close(nghttp2_session* ng, int32_t id, uint32_t error_code, void* user) {
    Session& s = self(user);
    Stream* st = stream(ng, id, user);
    if (!st) return 0;
    s.remember_closed(id, st->peer_reset                          ? Session::ClosedHow::kPeerReset
                          : st->remote_closed && st->local_closed ? Session::ClosedHow::kBothEnded
                                                                  : Session::ClosedHow::kWeReset);
    nghttp2_session_set_stream_user_data(ng, id, nullptr);
    s.forget_stream(st);
    s.listener_.on_stream_closed(*st, error_code);
    if (st->prev) st->prev->next = st->next;
    else s.streams_ = st->next;
    if (st->next) st->next->prev = st->prev;
    --s.open_streams_;
    delete st;
    return 0;
  }

  static int on_frame_send(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
    Session& s = self(user);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      // A reset after our trailers is ours to send; any other one the peer made us send.
      if (frame->rst_stream.error_code != NGHTTP2_NO_ERROR) s.charge_reset();
      return 0;
    }
    // Sending a response is what makes a client's pings legitimate (gRPC core's rule).
    if (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) s.forgive_pings();
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    Stream* st = stream(ng, frame->hd.stream_id, user);
    if (!st) return 0;
    st->local_closed = true;
    // The response is complete but the client is still sending: end the stream so its
    // state is freed now (what gRPC servers do: RST_STREAM NO_ERROR after trailers).
    if (!st->remote_closed) nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
  }

  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t len, int, void* user) {
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

  static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
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

  static ssize_t read_body(nghttp2_session* ng, int32_t id, uint8_t*, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    auto* st = static_cast<Stream*>(source->ptr);
    bool eof = false;
    size_t n = st->body->body_ready(length, &eof);
    if (n == 0 && !eof) return NGHTTP2_ERR_DEFERRED;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
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
};

Session::Session(transport::Transport& conn, const SessionSettings& settings, StreamListener& listener,
                 loop::TimerWheel* timers)
    : conn_(&conn), listener_(listener), settings_(settings), timers_(timers),
      mem_(timers, &Session::on_idle_period, this) {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &SessionCallbacks::on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &SessionCallbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback2(cbs, &SessionCallbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &SessionCallbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &SessionCallbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &SessionCallbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &SessionCallbacks::on_frame_send);
  nghttp2_session_callbacks_set_send_callback(cbs, &SessionCallbacks::send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &SessionCallbacks::send_data);

  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  // Window updates follow what handlers consume (rpc layer), not what arrived.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_send_header_block_length(opt, 64u << 10);
  // RFC 9113's request rules are checked by RequestRules, once per field (request_rules.h).
  nghttp2_option_set_no_http_messaging(opt, 1);
  mem_.new_server_session(&ng_, cbs, this, opt);  // nghttp2_memory.h
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);

  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kNghttp2StreamCeiling},  // see advertise_stream_limit
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.stream_window_bytes},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings.max_header_list_bytes},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(settings.connection_window_bytes));

  reset_tokens_ = settings_.reset_burst;
  reset_refill_ms_ = now_ms();
  last_read_ms_ = now_ms();
  keepalive_timer_.set_callback(&Session::keepalive_fired, this);
  if (settings_.keepalive_time_ms > 0) arm_keepalive(last_read_ms_ + settings_.keepalive_time_ms);
}

int Session::reset_malformed(Stream& st) {
  // Once per stream, however many of its frames break the rules before the reset goes out.
  if (!st.malformed_reset) {
    st.malformed_reset = true;
    nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, st.id, NGHTTP2_PROTOCOL_ERROR);
  }
  return 0;
}

Session::~Session() {
  // nghttp2_session_del reports no stream closes: free what is still open ourselves.
  while (streams_) {
    Stream* st = streams_;
    streams_ = st->next;
    delete st;
  }
  forget_closed_streams();
  if (ng_) nghttp2_session_del(ng_);
}

bool Session::on_bytes(const Bytes& data) noexcept {
  if (closed_ || failed_) return false;
  last_read_ms_ = now_ms();
  input_ = &data;
  ssize_t rv = nghttp2_session_mem_recv(ng_, data.data(), data.size());
  input_ = nullptr;
  if (rv < 0) {
    URINGRPC_LOG(base::LogLevel::kInfo, "%s: HTTP/2 error: %s", peer().c_str(),
                 nghttp2_strerror(static_cast<int>(rv)));
    return false;
  }
  apply_skipped_rules(data);
  check_output_pressure();
  check_done();
  return !closed_ && !failed_;
}

void Session::produce_output(transport::OutputQueue& out, size_t budget) noexcept {
  out_ = &out;
  budget_ = budget;
  int rv = nghttp2_session_send(ng_);
  out_ = nullptr;
  if (rv != 0) {
    URINGRPC_LOG(base::LogLevel::kInfo, "nghttp2_session_send: %s", nghttp2_strerror(rv));
    if (conn_) conn_->close_after_flush();
    return;
  }
  // More than one budget's worth queued: come back next turn.
  if (nghttp2_session_want_write(ng_) && out.bytes() >= budget) conn_->request_flush();
  check_output_pressure();
  check_done();
}

void Session::check_done() {
  if (!conn_ || closed_) return;
  if (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_)) {
    conn_->close_after_flush();
  }
}

bool Session::submit_headers(Stream& s, const HeaderList& headers, ResponseBody* body) {
  NvArray nva(headers);
  s.body = body;
  int rv;
  if (body) {
    nghttp2_data_provider prd;
    prd.source.ptr = &s;
    prd.read_callback = &SessionCallbacks::read_body;
    rv = nghttp2_submit_response(ng_, s.id, nva.data(), nva.size(), &prd);
  } else {
    rv = nghttp2_submit_response(ng_, s.id, nva.data(), nva.size(), nullptr);
  }
  request_flush();
  return rv == 0;
}

bool Session::submit_canned_response(Stream& s, const HeaderList& headers, std::string body) {
  s.canned = std::make_unique<CannedBody>(std::move(body));
  return submit_headers(s, headers, s.canned.get());
}

void Session::resume_body(Stream& s) {
  nghttp2_session_resume_data(ng_, s.id);
  request_flush();
}

void Session::reset(Stream& s, uint32_t h2_error) {
  nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, s.id, h2_error);
  request_flush();
}

void Session::consume(Stream& s, size_t n) {
  if (n == 0 || closed_) return;
  nghttp2_session_consume(ng_, s.id, n);
  request_flush();
}

void Session::start_graceful_shutdown() {
  if (shutdown_started_ || closed_) return;
  shutdown_started_ = true;
  nghttp2_submit_shutdown_notice(ng_);
  nghttp2_submit_ping(ng_, NGHTTP2_FLAG_NONE, kShutdownPingOpaque);
  request_flush();
}

void Session::close_after_flush() {
  if (closed_ || !conn_) return;
  if (!final_goaway_sent_) {
    final_goaway_sent_ = true;
    nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
  }
  conn_->close_after_flush();
}

void Session::close_now() {
  if (conn_) conn_->abort();
}

void Session::on_closed() noexcept {
  if (closed_) return;
  closed_ = true;
  keepalive_timer_.cancel();
  peer_identity_ = conn_->peer_identity();  // calls may still ask; the transport is going
  peer_ = conn_->peer();
  conn_ = nullptr;
  while (streams_) {
    Stream* st = streams_;
    streams_ = st->next;
    nghttp2_session_set_stream_user_data(ng_, st->id, nullptr);
    forget_stream(st);
    listener_.on_stream_closed(*st, NGHTTP2_CANCEL);
    delete st;
  }
  open_streams_ = 0;
  listener_.on_session_closed();
}

}  // namespace uringrpc::http2
