// The life of one RPC: admission → handler coroutine started on the shard → messages in
// and out → one final status (from the handler, a deadline, a reset, or shutdown) →
// freed once both the stream and the handler's frame are gone.
#include "rpc/call.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "base/log.h"
#include "base/probes.h"
#include "rpc/base64.h"
#include "rpc/connection_calls.h"
#include "rpc/message_limits.h"
#include "rpc/interceptor_chain.h"
#include "rpc/metadata_validation.h"
#include "rpc/percent_encoding.h"

namespace uringrpc::rpc {
namespace {

std::string current_exception_type() {
  std::type_info* t = abi::__cxa_current_exception_type();
  if (!t) return "exception";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(t->name(), nullptr, nullptr, &status),
                                              std::free);
  return status == 0 && name ? name.get() : t->name();
}

// The one place metadata becomes header fields: -bin values are base64-encoded into
// `encoded` (reserved up front, so the views into it stay valid until nghttp2 has copied
// the headers), the others are referenced where they are.
void append_metadata(const Metadata& md, std::vector<std::string>& encoded, http2::HeaderList& out) {
  encoded.clear();
  encoded.reserve(md.size());
  for (auto& [k, v] : md) {
    if (is_binary_metadata_key(k)) {
      encoded.push_back(base64_encode(v));
      out.push_back({k, encoded.back()});
    } else {
      out.push_back({k, v});
    }
  }
}

// The largest header block we send. nghttp2 refuses to send one whose encoded bound
// (nghttp2_hd_deflate_bound) passes 64 KiB, its default max_send_header_block_length, and
// fails the stream; counted as HTTP/2 counts a header list (name + value + 32 per field),
// a block never has a smaller count than that bound, so one within this always goes out.
constexpr size_t kMaxSendHeaderBlock = 64u << 10;

int64_t steady_ns() { return std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1); }

// grpc-status as text: a literal for the codes gRPC defines, so nothing is formatted per
// call; any other value a handler cast into a StatusCode is written into `storage`.
std::string_view status_digits(StatusCode code, std::string& storage) {
  static constexpr std::string_view kDigits[] = {"0", "1", "2",  "3",  "4",  "5",  "6",  "7", "8",
                                                 "9", "10", "11", "12", "13", "14", "15", "16"};
  auto i = static_cast<unsigned>(code);
  if (i < std::size(kDigits)) return kDigits[i];
  storage = std::to_string(static_cast<int>(code));
  return storage;
}

// The usual response head (no initial metadata from the handler), one per response
// compression, and the trailers of a plain OK: built once, submitted as they are.
const http2::FixedHeaders kHeadIdentity{
    {":status", "200"}, {"content-type", "application/grpc"}, {"grpc-accept-encoding", kAcceptEncoding}};
const http2::FixedHeaders kHeadGzip{{":status", "200"},
                                    {"content-type", "application/grpc"},
                                    {"grpc-encoding", "gzip"},
                                    {"grpc-accept-encoding", kAcceptEncoding}};
const http2::FixedHeaders kHeadDeflate{{":status", "200"},
                                       {"content-type", "application/grpc"},
                                       {"grpc-encoding", "deflate"},
                                       {"grpc-accept-encoding", kAcceptEncoding}};
const http2::FixedHeaders kOkTrailers{{"grpc-status", "0"}};

const http2::FixedHeaders& fixed_head(Compression response) {
  switch (response) {
    case Compression::kGzip: return kHeadGzip;
    case Compression::kDeflate: return kHeadDeflate;
    case Compression::kNone: break;
  }
  return kHeadIdentity;
}

size_t header_list_bytes(const http2::HeaderList& h) {
  size_t n = 0;
  for (const auto& f : h) n += f.name.size() + f.value.size() + 32;
  return n;
}

}  // namespace

// The coroutine that drives a handler: it turns however the handler ends into a status.
// It stops at its final suspend point; the Call destroys it.
struct Call::Runner {
  struct promise_type {
    URINGRPC_POOLED
    Runner get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::abort(); }  // run() catches everything
  };
  std::coroutine_handle<promise_type> h;
};

Call::Runner Call::run(Task<void> task) {
  resumed();
  Status status;
  Metadata trailing;
  try {
    co_await std::move(task);
    status.code = code_;
    if (code_ != StatusCode::OK) {
      status.message = details_;
      status.details = std::move(error_details_);
    }
    trailing = std::move(trailing_);
  } catch (AbortError& e) {
    // ServerContext::abort() validated these; an AbortError thrown by hand did not, and a
    // reserved key (grpc-status) must never reach the wire and override the real status.
    std::string invalid = validate_outgoing_metadata(e.trailing_metadata(), "trailing");
    if (invalid.empty()) {
      status = e.status();
      trailing = std::move(e.trailing_metadata());
    } else {
      status = {StatusCode::UNKNOWN, "Unexpected std::invalid_argument: " + invalid};
    }
  } catch (const std::exception& e) {
    if (code_ != StatusCode::OK) {
      status = {code_, details_, std::move(error_details_)};
    } else {
      status = {StatusCode::UNKNOWN, "Unexpected " + current_exception_type() + ": " + e.what()};
    }
  } catch (...) {
    status = {code_ != StatusCode::OK ? code_ : StatusCode::UNKNOWN,
              code_ != StatusCode::OK ? details_ : "Unexpected " + current_exception_type()};
  }
  on_handler_returned(std::move(status), std::move(trailing));
}

Call::Call(ConnectionCalls& owner, http2::Stream& stream, const MethodTable::Entry& method,
           http2::RawMetadata client_metadata, std::optional<uint64_t> deadline_ms, bool admitted)
    : owner_(owner),
      shard_(owner.shard()),
      stream_(&stream),
      method_(method),
      path_(method.path),
      ctx_(*this),
      raw_metadata_(std::move(client_metadata)),
      admitted_(admitted),
      interceptors_(owner.config().interceptors),
      deframer_(owner.config().max_receive_message_size) {
  if (deadline_ms) {
    auto now_ms = loop::TimerWheel::monotonic_now_ms();
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(*deadline_ms - std::min(*deadline_ms, now_ms));
    deadline_timer_.set_callback(&Call::on_deadline, this);
    shard_.timers().arm(deadline_timer_, *deadline_ms);
  }
}

Call::~Call() {
  if (runner_) runner_.destroy();
  if (authority_buf_) nghttp2_rcbuf_decref(authority_buf_);
  release_admission();
  discharge(buffered_);
}

void Call::charge(size_t n) {
  buffered_ += n;
  if (MemoryBudget* b = owner_.budget()) b->used += n;
}

void Call::discharge(size_t n) {
  buffered_ -= n;
  if (MemoryBudget* b = owner_.budget()) b->used -= n;
}

void Call::set_called_path(std::string_view path) {
  called_path_.assign(path.data(), path.size());
  path_ = called_path_;
}

void Call::start() {
  if (URINGRPC_PROBE_ENABLED(rpc_end)) start_ns_ = base::probes::now_ns();
  URINGRPC_PROBE(rpc_start, this, path_.data());
  meter_.start(owner_.metrics(), method_.slot);
  Task<void> task = interceptors_ ? start_intercepted() : method_.handler.run(ctx_);
  Runner r = run(std::move(task));
  runner_ = r.h;
  scheduled_ = runner_;
  shard_.schedule(runner_);
}

Task<void> Call::start_intercepted() {
  interceptors_entered_ = 0;
  wall_start_ns_ = std::chrono::system_clock::now().time_since_epoch() / std::chrono::nanoseconds(1);
  steady_start_ns_ = steady_ns();
  steady_end_ns_ = steady_start_ns_;
  return interceptors_->run(ctx_, method_.handler, interceptors_entered_);
}

void Call::on_call_end() noexcept {
  CallStats stats;
  stats.code = final_.code;
  stats.message = final_.message;
  stats.start = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(wall_start_ns_)));
  stats.duration = std::chrono::nanoseconds(steady_end_ns_ - steady_start_ns_);  // decide() set the end
  stats.messages_received = messages_in_;
  stats.bytes_received = bytes_in_;
  stats.messages_sent = messages_out_;
  stats.bytes_sent = emitted_;
  interceptors_->after(ctx_, stats, interceptors_entered_);
}

const Metadata& Call::client_metadata() const {
  if (!client_metadata_) {
    client_metadata_.emplace();
    client_metadata_->reserve(raw_metadata_.size());
    for (const http2::RawField& f : raw_metadata_) client_metadata_->emplace_back(std::string(f.name()), std::string(f.value()));
  }
  return *client_metadata_;
}

std::string_view Call::peer() const { return owner_.session().peer(); }
const PeerIdentity* Call::peer_identity() const { return owner_.session().peer_identity(); }

// --- request side

void Call::on_data(const Bytes& chunk) {
  meter_.received_bytes(chunk.size());
  bytes_in_ += chunk.size();
  if (ended_) {
    owner_.session().consume(*stream_, chunk.size());
    return;
  }
  charge(chunk.size());
  // The window for these bytes goes back now unless the handler is behind: then it goes
  // back when the handler takes messages, so a handler that does not read stops its
  // client once the queue is full (partial messages are bounded by the size limit).
  if (inbound_bytes_ > owner_.config().read_watermark) {
    window_held_ += chunk.size();
  } else {
    owner_.session().consume(*stream_, chunk.size());
  }
  auto err = deframer_.feed(chunk, [this](Bytes message, bool compressed) {
    if (compressed) {
      const size_t wire_size = message.size();
      if (auto error = compression_.inflate(message, deframer_.max_message_size())) {
        if (!ended_) cancel(std::move(*error));
        return;
      }
      // What the message now holds beyond what its DATA was charged with.
      if (message.size() > wire_size) charge(message.size() - wire_size);
    }
    // A queued message pins its whole receive buffer until the handler takes it; a slow
    // handler fed small messages could pin the shard's whole ring (every connection of
    // the shard then stalls on -ENOBUFS). When the ring runs low, queue a copy instead.
    if (!message.empty() && shard_.buffers().running_low() && shard_.buffers().contains(message.data())) {
      message = Bytes::copy(message.view());
    }
    meter_.received_message();
    inbound_bytes_ += kMessagePrefixSize + message.size();
    ++messages_in_;
    inbound_.push_back({std::move(message), compressed});
  });
  if (err == Deframer::Error::kMessageTooLarge && !ended_) {
    cancel({StatusCode::RESOURCE_EXHAUSTED,
            "Received message larger than max (" + std::to_string(deframer_.pending_message_length()) + " vs. " +
                std::to_string(owner_.config().max_receive_message_size) + ")"});
  } else if (err == Deframer::Error::kBadFlag && !ended_) {
    cancel({StatusCode::INTERNAL, "invalid gRPC message flag"});
  }
  if (ended_ && window_held_ && stream_) {
    owner_.session().consume(*stream_, window_held_);
    window_held_ = 0;
  }
  if (!inbound_.empty()) wake_reader();
}

void Call::on_request_end() {
  half_closed_ = true;
  if (deframer_.mid_message() && !ended_) {
    cancel({StatusCode::INTERNAL, "request stream ended inside a message"});
    return;
  }
  wake_reader();
}

std::optional<Bytes> Call::take_message() {
  resumed();
  if (inbound_.empty()) return std::nullopt;
  Bytes m = std::move(inbound_.front().message);
  last_read_compressed_ = inbound_.front().compressed;
  inbound_.pop_front();
  discharge(std::min(buffered_, kMessagePrefixSize + m.size()));
  return_window(kMessagePrefixSize + m.size());
  return m;
}

void Call::return_window(size_t message_bytes) {
  inbound_bytes_ -= message_bytes;
  if (window_held_ && inbound_bytes_ <= owner_.config().read_watermark) {
    if (stream_) owner_.session().consume(*stream_, window_held_);
    window_held_ = 0;
  }
}

void Call::wake_reader() {
  if (parked_reader_) wake();
}

void Call::wake_writer() {
  if (!parked_reader_) wake();
}

void Call::wake() {
  if (!parked_) return;
  scheduled_ = parked_;
  parked_ = nullptr;
  shard_.schedule(scheduled_);
}

// --- response side

void Call::add_initial_metadata(std::string k, std::string v) {
  initial_.emplace_back(std::move(k), std::move(v));
}

void Call::submit_response_headers() {
  headers_sent_ = true;
  if (!stream_) return;
  if (initial_.empty()) {  // what add_response_headers() would add, as one fixed block
    owner_.session().submit_fixed_headers(*stream_, fixed_head(compression_.response()), this);
    return;
  }
  http2::HeaderList h{{":status", "200", true}, {"content-type", "application/grpc", true}};
  std::vector<std::string> encoded;
  append_metadata(initial_, encoded, h);
  compression_.add_response_headers(h, true);
  owner_.session().submit_headers(*stream_, h, this);
}

void Call::send_initial_metadata() {
  if (!headers_sent_ && !ended_) submit_response_headers();
}

bool Call::enqueue_write(Bytes payload, bool* ok, WriteOptions options) {
  if (ended_ || !stream_) {
    *ok = false;
    return false;
  }
  // Checked before compression, as gRPC's message size filter does; none of it is sent.
  if (payload.size() > owner_.config().max_send_message_size) {
    cancel(send_limit_status(payload.size(), owner_.config().max_send_message_size));
    *ok = false;
    return false;
  }
  *ok = true;
  bool none_waiting = outbound_bytes_ == 0;
  meter_.sent_message();
  ++messages_out_;
  OutMessage m{};
  bool compressed = compression_.compress(payload, options.no_compress);
  encode_message_prefix(m.prefix, static_cast<uint32_t>(payload.size()), compressed);
  m.payload = std::move(payload);
  outbound_bytes_ += kMessagePrefixSize + m.payload.size();
  charge(kMessagePrefixSize + m.payload.size());
  outbound_.push_back(std::move(m));
  if (none_waiting && owner_.config().stalled_stream_timeout_ms > 0) {
    // Bytes wait from now on: the stall clock starts (the loop's time of its last
    // wake-up, not a clock read; a few milliseconds early is nothing against a timeout of
    // minutes), and the connection's sweep looks at this call until they are gone.
    last_progress_ms_ = shard_.timers().now_ms();
    emitted_seen_ = emitted_;
    owner_.watch_stalls();
  }
  if (!headers_sent_) {
    submit_response_headers();
  } else {
    owner_.session().resume_body(*stream_);
  }
  return outbound_bytes_ > owner_.config().write_watermark;
}

size_t Call::body_ready(size_t max, bool* eof) noexcept {
  size_t n = std::min(max, outbound_bytes_);
  if (trailers_due_ && n == outbound_bytes_) *eof = true;
  return n;
}

void Call::body_emit(size_t n, transport::OutputQueue& out) noexcept {
  outbound_bytes_ -= n;
  emitted_ += n;
  meter_.sent_bytes(n);
  discharge(std::min(buffered_, n));
  while (n > 0 && !outbound_.empty()) {
    OutMessage& m = outbound_.front();
    if (m.prefix_sent < kMessagePrefixSize) {
      size_t k = std::min(n, kMessagePrefixSize - m.prefix_sent);
      out.append_copy(m.prefix + m.prefix_sent, k);
      m.prefix_sent = static_cast<uint8_t>(m.prefix_sent + k);
      n -= k;
    }
    size_t rest = m.payload.size() - m.payload_sent;
    size_t k = std::min(n, rest);
    if (k > 0) {
      out.append_ref(m.payload.slice(m.payload_sent, k));
      m.payload_sent += k;
      n -= k;
    }
    if (m.prefix_sent == kMessagePrefixSize && m.payload_sent == m.payload.size()) outbound_.pop_front();
  }
  // A writer waiting for the queue to drain may go on.
  if (outbound_bytes_ <= owner_.config().write_watermark) wake_writer();
}

const http2::FixedHeaders* Call::body_fixed_trailers() noexcept {
  // What append_status() would write for a plain OK (details go only with an error).
  if (!final_.ok() || !final_.message.empty() || !trailing_.empty()) return nullptr;
  // Over the client's limit body_trailers() says why instead (it never is, at 44 bytes).
  const size_t limit = std::min<size_t>(owner_.session().peer_max_header_list_bytes(), kMaxSendHeaderBlock);
  return kOkTrailers.list_bytes() <= limit ? &kOkTrailers : nullptr;
}

void Call::body_trailers(http2::HeaderList& out) noexcept {
  const size_t head = out.size();  // Trailers-Only: the response head is in the same block
  append_status(out);
  // A client refuses a block over its SETTINGS_MAX_HEADER_LIST_SIZE and fails the call with
  // an error of its own (or nghttp2 refuses to send it and the client waits for its
  // deadline): say INTERNAL, and why, instead. Rich details are the usual culprit.
  const size_t limit = std::min<size_t>(owner_.session().peer_max_header_list_bytes(), kMaxSendHeaderBlock);
  const size_t bytes = header_list_bytes(out);
  if (bytes <= limit) return;
  URINGRPC_LOG(base::LogLevel::kWarn,
               "%s: status %s with %zu bytes of details and %zu trailing metadata entries makes a "
               "%zu-byte header block, over the client's limit of %zu; sending INTERNAL instead",
               path_.data(), std::string(status_code_name(final_.code)).c_str(), final_.details.size(),
               trailing_.size(), bytes, limit);
  final_ = {StatusCode::INTERNAL, "the call's status and trailing metadata make a " + std::to_string(bytes) +
                                      "-byte header block, over the client's limit of " + std::to_string(limit) +
                                      " bytes"};
  trailing_.clear();
  out.resize(head);
  append_status(out);
}

// The status and its texts are the call's own members (or literals) and stay as they are
// until the call is freed, after its stream closed: nghttp2 may refer to them (lasting).
// Metadata is copied: its keys are the handler's.
void Call::append_status(http2::HeaderList& out) {
  out.push_back({"grpc-status", status_digits(final_.code, status_text_), true});
  if (!final_.message.empty()) {
    message_text_ = percent_encode_message(final_.message);
    out.push_back({"grpc-message", message_text_, true});
  }
  append_metadata(trailing_, encoded_trailing_, out);
  // Rich details only with an error, as gRPC sends them: base64 without padding.
  if (!final_.ok() && !final_.details.empty()) {
    details_text_ = base64_encode(final_.details);
    out.push_back({"grpc-status-details-bin", details_text_, true});
  }
}

// --- ending

bool Call::decide(Status&& status, Metadata&& trailing) {
  if (ended_) return false;
  ended_ = true;
  if (interceptors_) steady_end_ns_ = steady_ns();
  shard_.timers().cancel(deadline_timer_);
  final_ = std::move(status);
  meter_.end(final_.code);
  URINGRPC_PROBE_GUARDED(rpc_end, this, path_.data(), static_cast<int>(final_.code), base::probes::since_ns(start_ns_));
  trailing_ = std::move(trailing);
  return true;
}

void Call::end(Status&& status, Metadata&& trailing) {
  if (!decide(std::move(status), std::move(trailing)) || !stream_) return;
  if (!headers_sent_) {
    // Trailers-Only: one HEADERS frame with the status and END_STREAM.
    headers_sent_ = true;
    http2::HeaderList h{{":status", "200", true}, {"content-type", "application/grpc", true}};
    std::vector<std::string> encoded;
    append_metadata(initial_, encoded, h);
    compression_.add_response_headers(h, false);
    body_trailers(h);
    owner_.session().submit_headers(*stream_, h, nullptr);
  } else {
    trailers_due_ = true;
    owner_.session().resume_body(*stream_);
  }
}

void Call::on_handler_returned(Status&& status, Metadata&& trailing) {
  handler_done_ = true;
  release_admission();
  if (!ended_ && status.code != StatusCode::OK) {
    URINGRPC_LOG(base::LogLevel::kDebug, "%s ended %s: %s", path_.data(),
                 std::string(status_code_name(status.code)).c_str(), status.message.c_str());
  }
  end(std::move(status), std::move(trailing));
  maybe_delete();
}

void Call::cancel(Status status) {
  end(std::move(status), {});
  cancelled_ = true;
  destroy_handler();
}

void Call::on_stream_closed(uint32_t h2_error) {
  stream_ = nullptr;
  if (!ended_ || !handler_done_) {
    // The client reset the stream or the connection went away.
    if (!ended_) end({StatusCode::CANCELLED, h2_error ? "stream reset by the client" : "stream closed"}, {});
    cancelled_ = true;
    destroy_handler();
  }
  maybe_delete();
}

void Call::on_deadline(void* self) {
  auto* call = static_cast<Call*>(self);
  call->cancel({StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"});
}

// Looked at every quarter of the timeout while response bytes wait (ConnectionCalls'
// sweep): a peer that keeps its window at zero (or stops reading the socket) for the whole
// timeout loses the stream, so it cannot pin a handler and its queued messages forever.
Call::Stall Call::check_stall(uint64_t now, uint64_t timeout) {
  if (!stream_ || outbound_bytes_ == 0 || stall_reset_) return Stall::kNone;
  if (emitted_ != emitted_seen_) {
    emitted_seen_ = emitted_;
    last_progress_ms_ = now;
  } else if (now - last_progress_ms_ >= timeout) {
    stall_reset_ = true;
    reset_stalled();
    return Stall::kReset;
  }
  return Stall::kWaiting;
}

void Call::reset_stalled() {
  URINGRPC_LOG(base::LogLevel::kInfo, "%s: %s: %zu response bytes not taken for %lu ms; resetting the stream",
               std::string(peer()).c_str(), path_.data(), outbound_bytes_,
               static_cast<unsigned long>(owner_.config().stalled_stream_timeout_ms));
  // The status is decided here, but the stream is reset rather than given trailers.
  decide({StatusCode::CANCELLED, "stream stalled"}, {});
  owner_.session().reset(*stream_, NGHTTP2_CANCEL);
  cancelled_ = true;
  destroy_handler();
}

void Call::destroy_handler() {
  if (handler_done_ || destroy_queued_) return;
  destroy_queued_ = true;
  // Frames are destroyed from deferred work: never inside a callback that one of them
  // is part of, and never while a resumption of one of them is queued.
  shard_.defer([this] {
    if (scheduled_) shard_.unschedule(scheduled_);
    scheduled_ = nullptr;
    parked_ = nullptr;
    if (runner_) runner_.destroy();
    runner_ = nullptr;
    handler_done_ = true;
    release_admission();
    maybe_delete();
  });
}

void Call::release_admission() {
  if (!admitted_) return;
  admitted_ = false;
  owner_.config().rpc_limit->release(shard_.index());
}

void Call::maybe_delete() {
  if (stream_ || !handler_done_ || delete_queued_) return;
  delete_queued_ = true;
  shard_.defer([this] {
    // The one place a call is known to be over: status sent or stream reset, handler gone.
    if (interceptors_) on_call_end();
    owner_.remove(this);
    delete this;
  });
}

}  // namespace uringrpc::rpc
