// Cuts a gRPC stream's DATA payload into length-prefixed messages (1 flag byte, 4-byte
// big-endian length, payload). Called by the HTTP/2 -> gRPC call layer from
// on_data_chunk_recv, and by the fuzzers; it knows nothing about sockets or nghttp2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "uringrpc/bytes.h"

namespace uringrpc::rpc {

inline constexpr size_t kMessagePrefixSize = 5;

class Deframer {
 public:
  enum class Error { kNone, kMessageTooLarge, kBadFlag };

  // Below this, a split message's buffer is sized to the declared length at once. Above
  // it the buffer grows with what actually arrives: a peer that declares 4 MiB on every
  // stream and sends 6 bytes must not make us hold 4 MiB per stream.
  static constexpr size_t kEagerReserveLimit = 64 * 1024;

  explicit Deframer(size_t max_message_size) noexcept : max_message_size_(max_message_size) {}

  // Feeds one chunk of DATA payload; calls on_message(Bytes message, bool compressed) for
  // every message it completes, in order. A message lying wholly inside `chunk` is
  // delivered as a slice of it (no copy, it shares the receive buffer); only a message
  // split across chunks is assembled into an owned buffer. A zero-length message arrives
  // as an empty Bytes that pins nothing. Returns the deframer's error, which is sticky:
  // after one, input is ignored. on_message must not destroy this deframer or feed it.
  template <class OnMessage>
  Error feed(const Bytes& chunk, OnMessage&& on_message);

  // A partial prefix or payload is pending: END_STREAM now means a truncated message.
  bool mid_message() const noexcept { return prefix_have_ > 0 || in_payload_; }
  // Bytes of the pending message held so far (partial prefix plus partial payload).
  size_t buffered_bytes() const noexcept { return prefix_have_ + partial_.size(); }
  // Memory held for the pending message (the assembly buffer's capacity), for accounting.
  size_t reserved_bytes() const noexcept { return partial_.capacity(); }
  Error error() const noexcept { return error_; }
  // Declared length of the message being assembled, or of the one refused with
  // kMessageTooLarge; meaningful while mid_message() or after that error.
  uint32_t pending_message_length() const noexcept { return pending_length_; }
  size_t max_message_size() const noexcept { return max_message_size_; }

 private:
  // Consumes up to the rest of the 5-byte prefix; on completion validates it and enters
  // the payload state (or the error state). Returns the bytes consumed.
  size_t read_prefix(const uint8_t* p, size_t n) noexcept;
  void begin_partial();
  // Copies up to the rest of the pending payload; returns the bytes consumed.
  size_t append_partial(const uint8_t* p, size_t n);
  Bytes take_partial();

  size_t max_message_size_;
  Error error_ = Error::kNone;
  uint8_t prefix_[kMessagePrefixSize] = {};
  uint8_t prefix_have_ = 0;
  // The prefix is complete and pending_length_ payload bytes are due.
  bool in_payload_ = false;
  bool compressed_ = false;
  uint32_t pending_length_ = 0;
  std::string partial_;
};

template <class OnMessage>
Deframer::Error Deframer::feed(const Bytes& chunk, OnMessage&& on_message) {
  const uint8_t* data = chunk.data();
  const size_t size = chunk.size();
  size_t pos = 0;
  while (error_ == Error::kNone && pos < size) {
    if (!in_payload_) {
      pos += read_prefix(data + pos, size - pos);
      if (!in_payload_) break;  // prefix still partial (chunk used up) or refused
      if (size - pos >= pending_length_) {
        // Whole payload in this chunk, even if its prefix was split: slice, don't copy.
        const size_t length = pending_length_;
        in_payload_ = false;
        Bytes message = length == 0 ? Bytes() : chunk.slice(pos, length);
        pos += length;
        on_message(std::move(message), compressed_);
        continue;
      }
      begin_partial();
    }
    pos += append_partial(data + pos, size - pos);
    if (partial_.size() == pending_length_) {
      in_payload_ = false;
      on_message(take_partial(), compressed_);
    }
  }
  return error_;
}

// Writes the 5-byte prefix for a message of `length` bytes into out[0..4].
void encode_message_prefix(uint8_t out[kMessagePrefixSize], uint32_t length,
                           bool compressed = false) noexcept;

}  // namespace uringrpc::rpc
