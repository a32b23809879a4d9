// MemoryTransport's bookkeeping; see memory_transport.h.
#include "memory_transport.h"

#include <algorithm>

namespace uringrpc::testing {

size_t MemoryTransport::drain(std::string& out, size_t budget) {
  if (closed || handler_ == nullptr) return 0;
  transport::OutputQueue q;
  producing_ = &q;
  handler_->produce_output(q, budget);
  producing_ = nullptr;
  const size_t n = q.bytes();
  q.copy_to(out);
  if (read_rate_ != 0) unread_ += n;
  if (closing) peer_closed();  // nothing to wait for: the bytes are "sent"
  return n;
}

void MemoryTransport::peer_closed() {
  if (closed) return;
  closed = true;
  if (handler_ != nullptr) handler_->on_closed();
}

void MemoryTransport::client_reads() {
  if (unread_ == 0 || closed) return;
  unread_ -= std::min(unread_, read_rate_);
  request_flush();
}

void MemoryTransport::request_flush() {
  ++flushes;
  if (!closed && on_flush_) on_flush_();
}

void MemoryTransport::close_after_flush() {
  closing = true;
  request_flush();
}

void MemoryTransport::abort() {
  aborted = true;
  peer_closed();
}

size_t MemoryTransport::queued_output_bytes() const {
  return unread_ + (producing_ != nullptr ? producing_->bytes() : 0);
}

}  // namespace uringrpc::testing
