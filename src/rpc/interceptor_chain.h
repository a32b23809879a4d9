// InterceptorChain: the server's interceptors (Server::add_interceptor, the access log), in
// order, shared read-only by every shard. A Call asks it for the coroutine it runs in place
// of the bare handler, and hands it the call's CallStats when the call is over.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "uringrpc/handler.h"
#include "uringrpc/interceptor.h"

namespace uringrpc::rpc {

class InterceptorChain {
 public:
  explicit InterceptorChain(std::vector<std::shared_ptr<Interceptor>> interceptors);

  size_t size() const noexcept { return interceptors_.size(); }

  // The call's coroutine: each before-hook in order, then the handler. `entered` counts the
  // before-hooks started (it belongs to the call, which outlives the coroutine); a hook that
  // throws or aborts ends the coroutine with that exception, and the call with its status.
  Task<void> run(ServerContext& ctx, const MethodHandler& handler, size_t& entered) const;

  // The after-hooks of the first `entered` interceptors, last first. Never throws.
  void after(const ServerContext& ctx, const CallStats& stats, size_t entered) const noexcept;

 private:
  std::vector<std::shared_ptr<Interceptor>> interceptors_;
  // An after-hook that throws once likely throws on every call: the first is a warning,
  // the rest debug lines (no log line per call at the default level).
  mutable std::atomic<bool> warned_{false};
};

}  // namespace uringrpc::rpc
