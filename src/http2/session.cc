// Session: the glue between one transport and one nghttp2 server session. Bytes in go to
// nghttp2 (whose events SessionCallbacks translates), frames out come from it; the peer
// rules live in their own state machines (peer_limits.h, closed_streams.h) and the
// Session carries out their verdicts (session_limits.cc).
#include "http2/session.h"

#include <algorithm>
#include <cstring>

#include "http2/field_memo.h"
#include "http2/nv_array.h"
#include "http2/session_callbacks.h"
#include "base/log.h"

namespace uringrpc::http2 {
namespace {

// nghttp2 treats a stream beyond the *acknowledged* SETTINGS_MAX_CONCURRENT_STREAMS as a
// connection error, which would end every good stream of a client that overshoots once.
// So nghttp2 is told this ceiling while the SETTINGS frame on the wire advertises ours
// (SessionCallbacks::send), and StreamCount refuses the excess stream alone with
// REFUSED_STREAM (RFC 9113 5.1.2).
constexpr uint32_t kNghttp2StreamCeiling = (1u << 31) - 1;

uint64_t clock_of(const loop::TimerWheel* timers) {
  return timers ? timers->now_ms() : loop::TimerWheel::monotonic_now_ms();
}

}  // namespace

Session::Session(transport::Transport& conn, const SessionSettings& settings, StreamListener& listener,
                 loop::TimerWheel* timers)
    : conn_(&conn),
      listener_(listener),
      settings_(settings),
      timers_(timers),
      mem_(timers, &Session::on_idle_period, this),
      stream_count_(settings.max_concurrent_streams),
      peer_resets_(settings.reset_burst, settings.reset_refill_per_second, clock_of(timers)),
      induced_resets_(settings.reset_burst, settings.reset_refill_per_second, clock_of(timers)),
      empty_frames_(settings.max_empty_frames),
      ping_strikes_(settings.max_ping_strikes, settings.min_ping_interval_ms, settings.min_ping_interval_idle_ms),
      keepalive_(settings.keepalive_time_ms, settings.keepalive_timeout_ms, clock_of(timers)) {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  SessionCallbacks::install(cbs);

  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  // Window updates follow what handlers consume (rpc layer), not what arrived.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_send_header_block_length(opt, 64u << 10);
  // RFC 9113's request rules are checked by RequestRules, once per field (request_rules.h).
  nghttp2_option_set_no_http_messaging(opt, 1);
  // A PING is answered only once PingStrikes has judged it (the one that strikes out gets
  // the GOAWAY, not an ACK first).
  nghttp2_option_set_no_auto_ping_ack(opt, 1);
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

  keepalive_timer_.set_callback(&Session::keepalive_fired, this);
  apply_keepalive(keepalive_.start());
}

Session::~Session() {
  // nghttp2_session_del reports no stream closes: free what is still open ourselves.
  while (streams_) {
    Stream* st = streams_;
    streams_ = st->next;
    delete st;
  }
  closed_streams_.forget_all(0);  // back to the pool before the session's memory goes
  FieldMemo::of_this_thread().forget(this);  // its references on nghttp2's buffers, likewise
  if (ng_) nghttp2_session_del(ng_);
}

bool Session::on_bytes(const Bytes& data) noexcept {
  if (phase_ != Phase::kOpen) return false;
  keepalive_.on_read(now_ms());
  input_ = &data;
  scanner_.new_read();
  const uint8_t* p = data.data();
  const uint8_t* unfed = p;  // nghttp2 has read everything before this
  size_t left = data.size();
  bool reading = true;
  // nghttp2 drops DATA on a stream it has forgotten, and PRIORITY frames, without telling
  // us: the scanner finds them in the raw bytes, and nghttp2 is fed up to each one so that
  // it is judged with the stream states of the frames before it, not after the whole read.
  while (reading && left > 0) {
    FrameScanner::Found found;
    size_t used = scanner_.scan(p, left, &found);
    if (used == 0) break;
    const uint8_t* end = p + used;
    if (found.kind == FrameScanner::Found::kData) {
      // nghttp2 looks at the stream once the header is whole: feed up to the header (or
      // what of it is in this chunk), judge, and let the header go with what follows.
      const uint8_t* header = end - std::min<size_t>(used, 9);
      reading = feed(unfed, static_cast<size_t>(header - unfed));
      unfed = header;
      if (reading) reading = judge_missing_data(found.stream) == 0;
    } else if (found.kind == FrameScanner::Found::kPrioritySelfDependency) {
      reading = feed(unfed, static_cast<size_t>(end - unfed));
      unfed = end;
      if (reading) reading = act(Verdict::goaway(kProtocolError, "stream depends on itself"), found.stream) == 0;
    }
    p = end;
    left -= used;
  }
  if (reading) feed(unfed, static_cast<size_t>(data.data() + data.size() - unfed));
  input_ = nullptr;
  if (phase_ == Phase::kClosed) return false;
  check_output_pressure();
  check_done();
  return phase_ == Phase::kOpen;
}

bool Session::feed(const uint8_t* p, size_t n) {
  if (n == 0) return phase_ == Phase::kOpen;
  ssize_t rv = nghttp2_session_mem_recv(ng_, p, n);
  if (rv < 0 && phase_ == Phase::kOpen) {
    // nghttp2's own fatal errors; a rule's verdict (kFailed) has logged its GOAWAY already.
    URINGRPC_LOG(base::LogLevel::kInfo, "%s: HTTP/2 error: %s", peer().c_str(), nghttp2_strerror(static_cast<int>(rv)));
    phase_ = Phase::kFailed;
  }
  return rv >= 0 && phase_ == Phase::kOpen;
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
  if (!conn_ || phase_ == Phase::kClosed) return;
  if (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_)) {
    conn_->close_after_flush();
  }
}

bool Session::submit_headers(Stream& s, const HeaderList& headers, ResponseBody* body) {
  NvArray nva(headers);
  return submit_nva(s, nva.data(), nva.size(), body);
}

bool Session::submit_fixed_headers(Stream& s, const FixedHeaders& headers, ResponseBody* body) {
  return submit_nva(s, headers.data(), headers.size(), body);
}

bool Session::submit_nva(Stream& s, const nghttp2_nv* nva, size_t n, ResponseBody* body) {
  s.body = body;
  int rv;
  if (body) {
    nghttp2_data_provider prd;
    prd.source.ptr = &s;
    prd.read_callback = &SessionCallbacks::read_body;
    rv = nghttp2_submit_response(ng_, s.id, nva, n, &prd);
  } else {
    rv = nghttp2_submit_response(ng_, s.id, nva, n, nullptr);
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
  if (h2_error == NGHTTP2_NO_ERROR) {
    nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, s.id, h2_error);
    request_flush();
    return;
  }
  reset_stream(s.id, h2_error);  // a GOAWAY instead if the budget is spent
}

void Session::consume(Stream& s, size_t n) {
  if (n == 0 || phase_ == Phase::kClosed) return;
  // Once the client's DATA has ended, the stream's window no longer matters (nothing more
  // may arrive on it): only the connection's goes back, without nghttp2's stream lookup.
  if (s.remote_closed || s.last_data) {
    nghttp2_session_consume_connection(ng_, n);
  } else {
    nghttp2_session_consume(ng_, s.id, n);
  }
  request_flush();
}

void Session::start_graceful_shutdown() {
  if (goaway_ != Goaway::kNone || phase_ != Phase::kOpen) return;
  goaway_ = Goaway::kNotice;
  nghttp2_submit_shutdown_notice(ng_);
  nghttp2_submit_ping(ng_, NGHTTP2_FLAG_NONE, kShutdownPingOpaque);
  request_flush();
}

void Session::close_after_flush() {
  if (phase_ == Phase::kClosed || !conn_) return;
  if (goaway_ != Goaway::kFinal) {
    goaway_ = Goaway::kFinal;
    nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
  }
  conn_->close_after_flush();
}

void Session::close_now() {
  if (conn_) conn_->abort();
}

void Session::on_closed() noexcept {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  keepalive_timer_.cancel();
  departed_.reset(new Departed{conn_->peer(), conn_->peer_identity()});  // calls may still ask
  conn_ = nullptr;
  while (streams_) {
    nghttp2_session_set_stream_user_data(ng_, streams_->id, nullptr);
    close_stream(streams_, NGHTTP2_CANCEL);
  }
  listener_.on_session_closed();
}

void Session::close_stream(Stream* st, uint32_t h2_error) {
  forget_stream(st);
  listener_.on_stream_closed(*st, h2_error);
  if (st->prev) st->prev->next = st->next;
  else streams_ = st->next;
  if (st->next) st->next->prev = st->prev;
  delete st;
}

}  // namespace uringrpc::http2
