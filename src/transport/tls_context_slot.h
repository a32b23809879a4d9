// TlsContextSlot: the TLS context a secure port hands to new connections, replaceable while
// the server runs (Server::reload_tls, set_tls_credentials). The server owns one per secure
// port; each shard's acceptor reads it through its own TlsContextReader.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "transport/tls_context.h"

namespace uringrpc::transport {

// Why a generation counter and a lock rather than posting the context to every shard, or an
// std::atomic<std::shared_ptr>: a shard looks at the slot once per accepted connection, and
// the common case, nothing replaced since its last look, must cost one atomic load and no
// shared cache line written (atomic<shared_ptr> locks on every load in libstdc++). Only
// the first accept after a replacement takes the mutex, once per shard, to copy the new
// shared_ptr. A handshake in progress holds its own reference to the context it started
// with (TlsSession::ctx_) and is never touched: a replacement affects only handshakes that
// begin after it, and the old context is freed when its last connection is.
class TlsContextSlot {
 public:
  explicit TlsContextSlot(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {}

  // Any thread. Connections accepted after this returns use `context`.
  void replace(std::shared_ptr<TlsContext> context);
  // Any thread: the context and the generation it belongs to, read together.
  std::shared_ptr<TlsContext> load(uint64_t* generation) const;
  uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;  // guards context_; never held across anything but a copy
  std::shared_ptr<TlsContext> context_;
  std::atomic<uint64_t> generation_{0};
};

// One acceptor's view of a slot (one per listening socket per shard, used only by that
// shard's thread): caches the context and refreshes it when the slot's generation moved.
class TlsContextReader {
 public:
  TlsContextReader() = default;  // an insecure port
  explicit TlsContextReader(std::shared_ptr<TlsContextSlot> slot) : slot_(std::move(slot)) {}

  explicit operator bool() const noexcept { return slot_ != nullptr; }
  // The newest context of the slot (null for an insecure port).
  const std::shared_ptr<TlsContext>& current() {
    if (slot_ && (!cached_ || slot_->generation() != seen_)) cached_ = slot_->load(&seen_);
    return cached_;
  }

 private:
  std::shared_ptr<TlsContextSlot> slot_;
  std::shared_ptr<TlsContext> cached_;
  uint64_t seen_ = 0;
};

}  // namespace uringrpc::transport
