// Interceptor: code that runs around every call of a server, whatever its method: an
// authentication check before the handler, a log line or a metric after the call.
// Registered with Server::add_interceptor() before start(); man uringrpc_interceptor(3).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "uringrpc/server_context.h"
#include "uringrpc/status.h"
#include "uringrpc/task.h"

namespace uringrpc {

// What an after-hook learns about a call that ended. Counts are of this call's stream only.
struct CallStats {
  // The final status, as the client was told (or would have been, for a call it reset).
  StatusCode code = StatusCode::OK;
  std::string_view message;  // grpc-message; valid during the after-hook only
  // When the request headers arrived (wall clock), and from then until the final status
  // was decided (the handler returned, the deadline passed, the client cancelled, ...).
  std::chrono::system_clock::time_point start{};
  std::chrono::nanoseconds duration{0};
  // Request messages and bytes that arrived: bytes are the stream's DATA as sent, the 5-byte
  // gRPC prefix of each message included and compressed messages at their compressed size.
  uint64_t messages_received = 0;
  uint64_t bytes_received = 0;
  // Response messages the handler wrote, and the response DATA bytes handed to HTTP/2 for
  // sending (prefixes included, after compression); a call reset by the client may have
  // written messages whose bytes never went out.
  uint64_t messages_sent = 0;
  uint64_t bytes_sent = 0;
};

// Derive and override either hook or both. One object serves every call on every shard,
// from all shard threads at once: state it keeps must be thread-safe.
//
// Order: before-hooks run in registration order, then the handler; after-hooks run in the
// reverse order (the first interceptor registered is the outermost, as in gRPC C++ and
// grpc-go). An interceptor's after-hook runs iff its before-hook was entered: when one
// interceptor ends the call in its before-hook, the interceptors after it (and the handler)
// never run, and the after-hooks of it and of those before it do.
class Interceptor {
 public:
  virtual ~Interceptor();

  // Runs on the call's shard before the handler, with everything the handler would see
  // (ctx.method(), ctx.client_metadata(), ctx.peer(), ctx.peer_identity(), deadline). It
  // may co_await like a handler (sleep_for, offload, any Task) and must not block the shard.
  //   - To let the call go on: return (co_return) normally.
  //   - To end it with a status instead: ctx.abort(StatusCode::UNAUTHENTICATED, "why")
  //     (or throw AbortError); the handler never runs.
  //   - Any other exception ends the call with UNKNOWN, as one escaping a handler does.
  //   - It may add response metadata: ctx.add_initial_metadata(), ctx.set_trailing_metadata()
  //     (a handler's own set_trailing_metadata() replaces the latter).
  // The default does nothing and costs no coroutine frame.
  virtual Task<void> before(ServerContext& ctx);

  // Runs on the call's shard once the call is over however it ended (OK, an error status,
  // deadline, cancellation, an exception, a before-hook's refusal), after its final status
  // was sent and the handler's frame destroyed. ctx's accessors for what the client sent
  // still work (method, metadata, peer); the call can no longer be changed. An exception
  // thrown here is logged (the server's first as a warning, later ones at debug level) and
  // ignored; the other after-hooks still run.
  virtual void after(const ServerContext& ctx, const CallStats& stats);
};

}  // namespace uringrpc
