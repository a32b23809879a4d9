// ServerContext and its awaiters, forwarding to the Call that implements them.
#include "uringrpc/server_context.h"

#include <stdexcept>

#include "rpc/call.h"
#include "rpc/metadata_validation.h"
#include "uringrpc/errors.h"
#include "uringrpc/handler.h"

namespace uringrpc {

std::string_view ServerContext::method() const noexcept { return call_.method(); }
const Metadata& ServerContext::client_metadata() const noexcept { return call_.client_metadata(); }
std::optional<std::string_view> ServerContext::client_metadata_value(std::string_view key) const noexcept {
  for (auto& [k, v] : call_.client_metadata()) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}
std::string_view ServerContext::peer() const noexcept { return call_.peer(); }
std::string_view ServerContext::authority() const noexcept { return call_.authority(); }
std::string_view ServerContext::user_agent() const noexcept { return call_.user_agent(); }
const PeerIdentity* ServerContext::peer_identity() const noexcept { return call_.peer_identity(); }
std::optional<std::chrono::steady_clock::time_point> ServerContext::deadline() const noexcept {
  return call_.deadline();
}
bool ServerContext::cancelled() const noexcept { return call_.cancelled(); }
bool ServerContext::last_read_compressed() const noexcept { return call_.last_read_compressed(); }
void ServerContext::set_code(StatusCode code) noexcept { call_.set_code(code); }
void ServerContext::set_details(std::string details) { call_.set_details(std::move(details)); }
StatusCode ServerContext::code() const noexcept { return call_.code(); }
void ServerContext::set_error_details(std::string serialized) { call_.set_error_details(std::move(serialized)); }

void ServerContext::set_trailing_metadata(Metadata md) {
  std::string error = rpc::validate_outgoing_metadata(md, "trailing");
  if (!error.empty()) throw std::invalid_argument(error);
  call_.set_trailing_metadata(std::move(md));
}

void ServerContext::add_initial_metadata(std::string key, std::string value) {
  if (call_.headers_sent()) throw UsageError("initial metadata was already sent");
  Metadata one{{key, value}};
  std::string error = rpc::validate_outgoing_metadata(one, "initial");
  if (!error.empty()) throw std::invalid_argument(error);
  call_.add_initial_metadata(std::move(key), std::move(value));
}

void ServerContext::send_initial_metadata() { call_.send_initial_metadata(); }

void ServerContext::set_compression(Compression c) {
  // The response headers name the algorithm (grpc-encoding); a change after them would
  // send messages the client cannot decode.
  if (call_.headers_sent()) throw UsageError("set_compression() after the response headers were sent");
  call_.compression().set_response(c);
}

Compression ServerContext::compression() const noexcept { return call_.compression().response(); }

void ServerContext::abort(StatusCode code, std::string details, Metadata trailing) {
  std::string error = rpc::validate_outgoing_metadata(trailing, "trailing");
  if (!error.empty()) throw std::invalid_argument(error);
  if (code == StatusCode::OK) throw std::invalid_argument("abort() needs a non-OK status code");
  throw AbortError(Status{code, std::move(details)}, std::move(trailing));
}

void ServerContext::abort(Status status, Metadata trailing) {
  std::string error = rpc::validate_outgoing_metadata(trailing, "trailing");
  if (!error.empty()) throw std::invalid_argument(error);
  if (status.ok()) throw std::invalid_argument("abort() needs a non-OK status code");
  throw AbortError(std::move(status), std::move(trailing));
}

void ServerContext::throw_undecodable() {
  throw AbortError(Status{StatusCode::INTERNAL, "Failed to parse request message"});
}

bool ServerContext::WriteAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
  bool must_wait = call_.enqueue_write(std::move(payload_), &ok_, options_);
  if (!must_wait) return false;
  call_.park_writer(h);
  return true;
}

bool ServerContext::WriteAwaiter::await_resume() noexcept {
  call_.resumed();
  return ok_;
}

bool ServerContext::RawReadAwaiter::await_ready() const noexcept { return call_.read_ready(); }

void ServerContext::RawReadAwaiter::await_suspend(std::coroutine_handle<> h) noexcept { call_.park_reader(h); }

std::optional<Bytes> ServerContext::RawReadAwaiter::await_resume() { return call_.take_message(); }

namespace detail {
void throw_missing_request() {
  throw AbortError(Status{StatusCode::INTERNAL, "the client sent no request message"});
}

// An OK status with no response would reach the client as OK without a message, which
// gRPC clients report as a confusing error of their own: name the handler's mistake.
static Status without_ok(Status status) {
  if (status.ok()) return {StatusCode::INTERNAL, "the handler returned an OK Status instead of a response"};
  return status;
}

void end_with_returned_status(ServerContext& ctx, Status&& status) {
  status = without_ok(std::move(status));
  ctx.set_code(status.code);
  ctx.set_details(std::move(status.message));
  ctx.set_error_details(std::move(status.details));
}

void throw_returned_status(Status status) { throw AbortError(without_ok(std::move(status))); }
}  // namespace detail

}  // namespace uringrpc
