// Request admission: HTTP checks, method lookup, the server-wide RPC limit, deadline and
// metadata decoding, then a Call. Rejections answer with a complete response at once.
#include "rpc/connection_calls.h"

#include <random>

#include "base/log.h"
#include "rpc/base64.h"
#include "rpc/compression.h"
#include "rpc/grpc_timeout.h"
#include "rpc/metadata_validation.h"
#include "rpc/percent_encoding.h"

namespace uringrpc::rpc {
namespace {

bool is_grpc_content_type(std::string_view ct) {
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct.substr(0, kGrpc.size()) != kGrpc) return false;
  return ct.size() == kGrpc.size() || ct[kGrpc.size()] == '+' || ct[kGrpc.size()] == ';';
}

// ±10% so that connections opened together do not all go away together (gRPC core's rule).
uint64_t jittered(uint64_t ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> jitter(-static_cast<int64_t>(ms / 10), static_cast<int64_t>(ms / 10));
  return static_cast<uint64_t>(static_cast<int64_t>(ms) + jitter(rng));
}

}  // namespace

ConnectionCalls::ConnectionCalls(loop::Shard& shard, transport::Transport& conn, const RpcConfig& config,
                                 const http2::SessionSettings& settings)
    : shard_(shard),
      config_(config),
      session_(conn, settings, *this, &shard.timers()),
      max_streams_(settings.max_concurrent_streams),
      budget_(config.budgets ? &config.budgets[shard.index()] : nullptr),
      metrics_(config.metrics ? &config.metrics[shard.index()] : nullptr) {
  if (config_.max_connection_idle_ms > 0 || config_.max_connection_age_ms > 0) {
    life_ = std::make_unique<LifeTimers>();
    life_->idle.set_callback(&ConnectionCalls::idle_expired, this);
    life_->age.set_callback(&ConnectionCalls::age_expired, this);
  }
  arm_idle_timer();
  if (config_.max_connection_age_ms > 0) {
    shard_.timers().arm(life_->age, shard_.now_ms() + jittered(config_.max_connection_age_ms));
  }
}

ConnectionCalls::~ConnectionCalls() = default;

void ConnectionCalls::reject(http2::Stream& s, const char* http_status, StatusCode code,
                             std::string_view message, bool accept_encoding) {
  std::string status = std::to_string(static_cast<int>(code));
  std::string encoded = percent_encode_message(message);
  bool grpc_answer = std::string_view(http_status) == "200";
  // A request that is not gRPC at all gets a whole HTTP answer a person or a prober can
  // read; grpc-status rides along for gRPC clients that sent something wrong.
  http2::HeaderList h{{":status", http_status},
                      {"content-type", grpc_answer ? "application/grpc" : "text/plain; charset=utf-8"},
                      {"grpc-status", status},
                      {"grpc-message", encoded}};
  if (accept_encoding) h.push_back({"grpc-accept-encoding", kAcceptEncoding});
  if (grpc_answer) {
    session_.submit_headers(s, h, nullptr);  // Trailers-Only
  } else {
    session_.submit_canned_response(s, h, std::string(message) + "\n");
  }
}

void ConnectionCalls::on_request(http2::Stream& s, bool end_stream) noexcept {
  if (refusing_) {
    session_.reset(s, NGHTTP2_REFUSED_STREAM);
    return;
  }
  // A reset stream's handler still counts until it ends (Rapid Reset: resetting is not a
  // way around the stream limit).
  if (live_calls_ >= max_streams_) {
    session_.reset(s, NGHTTP2_REFUSED_STREAM);
    return;
  }
  http2::RequestHead& head = s.head;
  if (s.headers_too_large) {
    reject(s, "200", StatusCode::RESOURCE_EXHAUSTED,
           "request header list larger than " + std::to_string(session_.max_header_list_bytes()) + " bytes");
    return;
  }
  if (head.method != "POST") {
    reject(s, "405", StatusCode::INTERNAL, "gRPC requires the POST method");
    return;
  }
  if (!is_grpc_content_type(head.content_type)) {
    reject(s, "415", StatusCode::INTERNAL, "invalid gRPC request content-type \"" + std::string(head.content_type) + "\"");
    return;
  }
  if (head.te != "trailers") {
    reject(s, "400", StatusCode::INTERNAL, "gRPC requires \"te: trailers\"");
    return;
  }
  std::optional<uint64_t> deadline_ms;
  if (head.has_grpc_timeout) {
    auto timeout = parse_grpc_timeout(head.grpc_timeout);
    if (!timeout) {
      reject(s, "400", StatusCode::INTERNAL, "invalid grpc-timeout \"" + std::string(head.grpc_timeout) + "\"");
      return;
    }
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
    deadline_ms = loop::TimerWheel::monotonic_now_ms() + static_cast<uint64_t>(ms);
  }
  std::optional<Compression> request_encoding = parse_encoding(head.grpc_encoding);
  if (!request_encoding) {
    reject(s, "200", StatusCode::UNIMPLEMENTED,
           "unsupported grpc-encoding \"" + std::string(head.grpc_encoding) + "\" (accepted: " +
               std::string(kAcceptEncoding) + ")",
           true);
    return;
  }
  const MethodTable::Entry* method = config_.methods->find(head.path, last_method_);
  const bool fallback = !method;
  if (fallback) method = config_.methods->fallback();
  if (!method) {
    reject(s, "200", StatusCode::UNIMPLEMENTED, "Method not found: " + std::string(head.path));
    return;
  }
  // -bin values are decoded now (a bad one is the client's error, answered at once); the
  // handler's std::string Metadata is only built if it asks for it (Call::client_metadata).
  for (http2::RawField& f : head.metadata) {
    if (!is_binary_metadata_key(f.name())) continue;
    auto decoded = base64_decode(f.value());
    if (!decoded) {
      reject(s, "400", StatusCode::INTERNAL, "invalid base64 in metadata \"" + std::string(f.name()) + "\"");
      return;
    }
    f.set_value(*decoded);
  }
  if (budget_ && budget_->exhausted()) {
    reject(s, "200", StatusCode::RESOURCE_EXHAUSTED, "server memory budget for buffered messages exhausted");
    return;
  }
  bool admitted = false;
  if (config_.rpc_limit) {
    if (!config_.rpc_limit->admit(shard_.index())) {
      reject(s, "200", StatusCode::RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!");
      return;
    }
    admitted = true;
  }
  auto* call = new Call(*this, s, *method, std::move(head.metadata), deadline_ms, admitted);
  if (fallback) call->set_called_path(head.path);
  call->set_authority(head.authority, head.take_authority());
  call->compression().start(*request_encoding, parse_accept_encoding(head.grpc_accept_encoding),
                            config_.default_compression);
  call->next_ = calls_;
  if (calls_) calls_->prev_ = call;
  calls_ = call;
  ++live_calls_;
  if (life_) life_->idle.cancel();
  s.upper = call;
  call->start();
  if (end_stream) call->on_request_end();
}

void ConnectionCalls::on_request_data(http2::Stream& s, const Bytes& chunk) noexcept {
  if (auto* call = static_cast<Call*>(s.upper)) call->on_data(chunk);
}

void ConnectionCalls::on_request_end(http2::Stream& s) noexcept {
  if (auto* call = static_cast<Call*>(s.upper)) call->on_request_end();
}

void ConnectionCalls::on_stream_closed(http2::Stream& s, uint32_t h2_error) noexcept {
  if (auto* call = static_cast<Call*>(s.upper)) {
    s.upper = nullptr;
    call->on_stream_closed(h2_error);
  }
}

void ConnectionCalls::on_session_closed() noexcept {
  closed_ = true;
  maybe_delete();
}

void ConnectionCalls::remove(Call* call) {
  if (call->prev_) call->prev_->next_ = call->next_;
  else calls_ = call->next_;
  if (call->next_) call->next_->prev_ = call->prev_;
  --live_calls_;
  arm_idle_timer();
  maybe_delete();
}

void ConnectionCalls::arm_idle_timer() {
  if (config_.max_connection_idle_ms == 0 || calls_ || closed_ || shutting_down_) return;
  shard_.timers().arm(life_->idle, shard_.now_ms() + jittered(config_.max_connection_idle_ms));
}

void ConnectionCalls::idle_expired(void* self) {
  auto* c = static_cast<ConnectionCalls*>(self);
  if (!c->calls_ && !c->closed_) c->start_graceful_shutdown();
}

void ConnectionCalls::age_expired(void* self) {
  auto* c = static_cast<ConnectionCalls*>(self);
  if (c->closed_) return;
  c->start_graceful_shutdown();
  if (c->config_.max_connection_age_grace_ms > 0) {
    c->life_->age.set_callback(&ConnectionCalls::age_grace_expired, c);
    c->shard_.timers().arm(c->life_->age, c->shard_.now_ms() + c->config_.max_connection_age_grace_ms);
  }
}

void ConnectionCalls::age_grace_expired(void* self) {
  auto* c = static_cast<ConnectionCalls*>(self);
  if (c->closed_) return;
  c->cancel_all({StatusCode::UNAVAILABLE, "max connection age reached"});
  c->session_.request_flush();
  c->close_when_flushed();
}

void ConnectionCalls::watch_stalls() {
  if (stall_timer_ && stall_timer_->armed()) return;
  if (!stall_timer_) stall_timer_ = std::make_unique<loop::Timer>(&ConnectionCalls::sweep_stalls, this);
  uint64_t period = std::max<uint64_t>(config_.stalled_stream_timeout_ms / 4, 1);
  shard_.timers().arm(*stall_timer_, shard_.timers().now_ms() + period);
}

void ConnectionCalls::sweep_stalls(void* self) {
  auto* c = static_cast<ConnectionCalls*>(self);
  uint64_t now = c->shard_.now_ms();
  uint64_t timeout = c->config_.stalled_stream_timeout_ms;
  bool waiting = false;
  for (Call* call = c->calls_; call; call = call->next_) {
    Call::Stall stall = call->check_stall(now, timeout);
    if (stall == Call::Stall::kReset) {
      // A reset may change the list of calls: the rest are looked at on the next turn.
      c->shard_.timers().arm(*c->stall_timer_, now + 1);
      return;
    }
    waiting |= stall == Call::Stall::kWaiting;
  }
  if (waiting) {
    c->shard_.timers().arm(*c->stall_timer_, now + std::max<uint64_t>(timeout / 4, 1));
  } else {
    c->stall_timer_.reset();  // the wheel has let go of it before calling (fire_all)
  }
}

void ConnectionCalls::start_graceful_shutdown() {
  shutting_down_ = true;
  if (life_) life_->idle.cancel();
  session_.start_graceful_shutdown();
}

void ConnectionCalls::cancel_all(const Status& status) {
  shutting_down_ = true;
  refusing_ = true;
  for (Call* c = calls_; c; c = c->next_) c->cancel(status);
}

void ConnectionCalls::maybe_delete() {
  if (!closed_ || calls_ || delete_queued_) return;
  delete_queued_ = true;
  shard_.defer([this] {
    GoneFn gone = on_gone_;
    void* owner = gone_owner_;
    uint32_t slot = list_slot_;  // read before the delete: the owner's list needs it
    delete this;
    if (gone) gone(owner, slot);
  });
}

}  // namespace uringrpc::rpc
