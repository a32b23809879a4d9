// TlsContextSlot's two locked operations; see tls_context_slot.h for why a lock is enough.
#include "transport/tls_context_slot.h"

namespace uringrpc::transport {

void TlsContextSlot::replace(std::shared_ptr<TlsContext> context) {
  std::shared_ptr<TlsContext> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = std::move(context_);
    context_ = std::move(context);
    // Release: a reader that sees the new generation and then locks finds the new context.
    generation_.fetch_add(1, std::memory_order_release);
  }
  // `old` is released here, outside the lock; connections still using it keep it alive.
}

std::shared_ptr<TlsContext> TlsContextSlot::load(uint64_t* generation) const {
  std::lock_guard<std::mutex> lock(mu_);
  *generation = generation_.load(std::memory_order_relaxed);
  return context_;
}

}  // namespace uringrpc::transport
