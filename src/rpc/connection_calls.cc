// Request admission: HTTP checks, method lookup, the server-wide RPC limit, deadline and
// metadata decoding, then a Call. Rejections answer with a complete response at once.
#include "rpc/connection_calls.h"

#include "loop/log.h"
#include "rpc/base64.h"
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

}  // namespace

ConnectionCalls::ConnectionCalls(loop::Shard& shard, transport::Transport& conn, const RpcConfig& config,
                                 const http2::SessionSettings& settings)
    : shard_(shard), config_(config), session_(conn, settings, *this) {}

ConnectionCalls::~ConnectionCalls() = default;

void ConnectionCalls::reject(http2::Stream& s, const char* http_status, StatusCode code,
                             std::string_view message, bool accept_encoding) {
  std::string status = std::to_string(static_cast<int>(code));
  std::string encoded = percent_encode_message(message);
  http2::HeaderList h{{":status", http_status},
                      {"content-type", "application/grpc"},
                      {"grpc-status", status},
                      {"grpc-message", encoded}};
  if (accept_encoding) h.push_back({"grpc-accept-encoding", "identity"});
  session_.submit_headers(s, h, nullptr);
}

void ConnectionCalls::on_request(http2::Stream& s, bool end_stream) noexcept {
  if (shutting_down_) {
    session_.reset(s, NGHTTP2_REFUSED_STREAM);
    return;
  }
  http2::RequestHead& head = s.head;
  if (head.method != "POST") {
    reject(s, "405", StatusCode::INTERNAL, "gRPC requires the POST method");
    return;
  }
  if (!is_grpc_content_type(head.content_type)) {
    reject(s, "415", StatusCode::INTERNAL, "invalid gRPC request content-type \"" + head.content_type + "\"");
    return;
  }
  if (head.te != "trailers") {
    reject(s, "400", StatusCode::INTERNAL, "gRPC requires \"te: trailers\"");
    return;
  }
  std::optional<uint64_t> deadline_ms;
  if (!head.grpc_timeout.empty()) {
    auto timeout = parse_grpc_timeout(head.grpc_timeout);
    if (!timeout) {
      reject(s, "400", StatusCode::INTERNAL, "invalid grpc-timeout \"" + head.grpc_timeout + "\"");
      return;
    }
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
    deadline_ms = loop::TimerWheel::monotonic_now_ms() + static_cast<uint64_t>(ms);
  }
  if (!head.grpc_encoding.empty() && head.grpc_encoding != "identity") {
    reject(s, "200", StatusCode::UNIMPLEMENTED, "unsupported grpc-encoding \"" + head.grpc_encoding + "\"", true);
    return;
  }
  const MethodTable::Entry* method = config_.methods->find(head.path);
  if (!method) {
    reject(s, "200", StatusCode::UNIMPLEMENTED, "Method not found: " + head.path);
    return;
  }
  Metadata md;
  md.reserve(head.metadata.size());
  for (auto& [k, v] : head.metadata) {
    if (is_binary_metadata_key(k)) {
      auto decoded = base64_decode(v);
      if (!decoded) {
        reject(s, "400", StatusCode::INTERNAL, "invalid base64 in metadata \"" + k + "\"");
        return;
      }
      md.emplace_back(std::move(k), std::move(*decoded));
    } else {
      md.emplace_back(std::move(k), std::move(v));
    }
  }
  bool admitted = false;
  if (config_.max_concurrent_rpcs > 0) {
    if (config_.active_rpcs->fetch_add(1, std::memory_order_relaxed) >= config_.max_concurrent_rpcs) {
      config_.active_rpcs->fetch_sub(1, std::memory_order_relaxed);
      reject(s, "200", StatusCode::RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!");
      return;
    }
    admitted = true;
  }
  auto* call = new Call(*this, s, *method, std::move(md), deadline_ms, admitted);
  call->next_ = calls_;
  if (calls_) calls_->prev_ = call;
  calls_ = call;
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
  maybe_delete();
}

void ConnectionCalls::start_graceful_shutdown() {
  shutting_down_ = true;
  session_.start_graceful_shutdown();
}

void ConnectionCalls::cancel_all(const Status& status) {
  shutting_down_ = true;
  for (Call* c = calls_; c; c = c->next_) c->cancel(status);
}

void ConnectionCalls::maybe_delete() {
  if (!closed_ || calls_ || delete_queued_) return;
  delete_queued_ = true;
  shard_.defer([this] {
    auto gone = std::move(on_gone_);
    delete this;
    if (gone) gone();
  });
}

}  // namespace uringrpc::rpc
