// OutputQueue bookkeeping; see output_queue.h.
#include "transport/output_queue.h"

#include <cstring>

namespace uringrpc::transport {

namespace {
// First sizes when a drained queue is used again: one block each for a typical turn's
// frames (a few responses' headers, DATA headers and trailers), instead of regrowing.
constexpr size_t kFirstCopyBytes = 496;  // with the string's terminator: a 512-byte block
constexpr size_t kFirstPieces = 8;
}  // namespace

void OutputQueue::append_copy(const uint8_t* data, size_t len) {
  if (len == 0) return;
  if (copies_.capacity() < kFirstCopyBytes) copies_.reserve(kFirstCopyBytes);
  size_t off = copies_.size();
  copies_.append(reinterpret_cast<const char*>(data), len);
  if (!pieces_.empty() && pieces_.back().copied && pieces_.size() > first_ &&
      pieces_.back().offset + pieces_.back().len == off) {
    pieces_.back().len += len;  // adjacent small frames become one iovec
  } else {
    if (pieces_.capacity() == 0) pieces_.reserve(kFirstPieces);
    pieces_.push_back({true, off, len, {}});
  }
  bytes_ += len;
}

void OutputQueue::append_ref(Bytes payload) {
  if (payload.empty()) return;
  bytes_ += payload.size();
  if (pieces_.capacity() == 0) pieces_.reserve(kFirstPieces);
  pieces_.push_back({false, 0, payload.size(), std::move(payload)});
}

void OutputQueue::clear() {
  copies_.clear();
  pieces_.clear();
  first_ = 0;
  bytes_ = 0;
}

size_t OutputQueue::build_iovecs(iovec* iov, size_t max) const {
  size_t n = 0;
  for (size_t i = first_; i < pieces_.size() && n < max; ++i) {
    const Piece& p = pieces_[i];
    const uint8_t* base = p.copied ? reinterpret_cast<const uint8_t*>(copies_.data()) + p.offset
                                   : p.ref.data() + p.offset;
    iov[n].iov_base = const_cast<uint8_t*>(base);
    iov[n].iov_len = p.len;
    ++n;
  }
  return n;
}

void OutputQueue::consume(size_t n) {
  bytes_ -= n;
  while (n > 0 && first_ < pieces_.size()) {
    Piece& p = pieces_[first_];
    if (n >= p.len) {
      n -= p.len;
      p.ref = Bytes();
      ++first_;
    } else {
      p.offset += n;
      p.len -= n;
      n = 0;
    }
  }
  if (first_ == pieces_.size()) release();
}

void OutputQueue::release() {
  clear();
  decltype(copies_)().swap(copies_);
  decltype(pieces_)().swap(pieces_);
}

void OutputQueue::copy_to(std::string& out) const {
  for (size_t i = first_; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    const char* base = p.copied ? copies_.data() + p.offset
                                : reinterpret_cast<const char*>(p.ref.data()) + p.offset;
    out.append(base, p.len);
  }
}

}  // namespace uringrpc::transport
