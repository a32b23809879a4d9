// The order interceptors run in (man uringrpc_interceptor(3)): before-hooks first to last,
// then the handler, after-hooks last to first, each after-hook only for a before-hook that
// was entered. Called by Call::start() and Call::on_call_end().
#include "rpc/interceptor_chain.h"

#include <exception>
#include <stdexcept>
#include <string>

#include "base/log.h"

namespace uringrpc {

Interceptor::~Interceptor() = default;
Task<void> Interceptor::before(ServerContext&) { return {}; }
void Interceptor::after(const ServerContext&, const CallStats&) {}

namespace rpc {

InterceptorChain::InterceptorChain(std::vector<std::shared_ptr<Interceptor>> interceptors)
    : interceptors_(std::move(interceptors)) {
  for (const auto& i : interceptors_) {
    if (!i) throw std::invalid_argument("null interceptor");
  }
}

Task<void> InterceptorChain::run(ServerContext& ctx, const MethodHandler& handler, size_t& entered) const {
  for (const auto& i : interceptors_) {
    ++entered;
    // The default before() returns an empty task: nothing to await, no frame was made.
    Task<void> hook = i->before(ctx);
    if (hook.valid()) co_await std::move(hook);
  }
  co_await handler.run(ctx);
}

void InterceptorChain::after(const ServerContext& ctx, const CallStats& stats, size_t entered) const noexcept {
  for (size_t k = entered; k-- > 0;) {
    try {
      interceptors_[k]->after(ctx, stats);
    } catch (...) {
      std::string what = "an exception";
      try {
        throw;
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      // Looked at before it is written: an exchange on every throwing call would write a line
      // every shard shares, once per call, after the first.
      const bool first =
          !warned_.load(std::memory_order_relaxed) && !warned_.exchange(true, std::memory_order_relaxed);
      URINGRPC_LOG(first ? base::LogLevel::kWarn : base::LogLevel::kDebug,
                   "%s: interceptor %zu's after-hook threw: %s%s", std::string(ctx.method()).c_str(), k, what.c_str(),
                   first ? " (further ones are logged at debug level)" : "");
    }
  }
}

}  // namespace rpc
}  // namespace uringrpc
