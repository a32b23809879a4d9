// Out-of-line parts of the gRPC message deframer: prefix parsing and the assembly
// buffer for messages split across DATA chunks. See deframer.h.
#include "rpc/deframer.h"

#include <algorithm>
#include <cstring>

namespace uringrpc::rpc {

size_t Deframer::read_prefix(const uint8_t* p, size_t n) noexcept {
  const uint8_t* prefix = p;
  size_t consumed = kMessagePrefixSize;
  // Common case: the whole prefix is in this chunk and is parsed in place. Otherwise
  // gather it in prefix_ across chunks, however thinly the peer slices it.
  if (prefix_have_ != 0 || n < kMessagePrefixSize) {
    consumed = std::min(n, kMessagePrefixSize - prefix_have_);
    std::memcpy(prefix_ + prefix_have_, p, consumed);
    prefix_have_ = static_cast<uint8_t>(prefix_have_ + consumed);
    if (prefix_have_ < kMessagePrefixSize) return consumed;
    prefix = prefix_;
    prefix_have_ = 0;
  }
  const uint8_t flag = prefix[0];
  pending_length_ = (uint32_t{prefix[1]} << 24) | (uint32_t{prefix[2]} << 16) |
                    (uint32_t{prefix[3]} << 8) | uint32_t{prefix[4]};
  if (flag > 1) {
    error_ = Error::kBadFlag;
    return consumed;
  }
  // Refuse on the prefix alone, before a single payload byte is buffered.
  if (pending_length_ > max_message_size_) {
    error_ = Error::kMessageTooLarge;
    return consumed;
  }
  compressed_ = flag == 1;
  in_payload_ = true;
  return consumed;
}

void Deframer::begin_partial() {
  partial_.clear();
  partial_.reserve(std::min<size_t>(pending_length_, kEagerReserveLimit));
}

size_t Deframer::append_partial(const uint8_t* p, size_t n) {
  const size_t take = std::min(n, pending_length_ - partial_.size());
  const size_t need = partial_.size() + take;
  if (need > partial_.capacity()) {
    // Grow geometrically but never past the declared length, so the final buffer is
    // exact and the total copying stays linear in the message size.
    // Reserve on a fresh string: libstdc++'s reserve() on a non-empty one rounds up to
    // twice the old capacity, which would overshoot the declared length.
    std::string bigger;
    bigger.reserve(std::min<size_t>(pending_length_, std::max(need, 2 * partial_.capacity())));
    bigger.append(partial_);
    partial_.swap(bigger);
  }
  partial_.append(reinterpret_cast<const char*>(p), take);
  return take;
}

Bytes Deframer::take_partial() {
  Bytes message(std::move(partial_));
  partial_ = std::string();  // a moved-from string's state is unspecified; make it empty
  return message;
}

void encode_message_prefix(uint8_t out[kMessagePrefixSize], uint32_t length,
                           bool compressed) noexcept {
  out[0] = compressed ? 1 : 0;
  out[1] = static_cast<uint8_t>(length >> 24);
  out[2] = static_cast<uint8_t>(length >> 16);
  out[3] = static_cast<uint8_t>(length >> 8);
  out[4] = static_cast<uint8_t>(length);
}

}  // namespace uringrpc::rpc
