// OutputQueue bookkeeping; see output_queue.h.
#include "transport/output_queue.h"

#include <cstring>

namespace uringrpc::transport {

namespace {
// First sizes when a drained queue is used again: one block each for a typical turn's
// frames (a few responses' headers, DATA headers and trailers), instead of regrowing.
constexpr size_t kFirstCopyBytes = 512;
constexpr size_t kFirstPieces = 8;

// Frame headers (9 bytes) and message prefixes (5) are most appends: copied in two
// overlapping loads and stores instead of a call to memcpy.
void copy_small_or_not(char* dst, const uint8_t* src, size_t len) {
  if (len >= 8 && len <= 16) {
    uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + len - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + len - 8, &b, 8);
  } else if (len >= 4 && len < 8) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + len - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + len - 4, &b, 4);
  } else {
    std::memcpy(dst, src, len);
  }
}
}  // namespace

void OutputQueue::grow_copies(size_t more) {
  size_t cap = copies_cap_ ? copies_cap_ * 2 : kFirstCopyBytes;
  while (cap - copies_size_ < more) cap *= 2;
  auto* bigger = static_cast<char*>(base::pool_allocate(cap));
  if (copies_size_) std::memcpy(bigger, copies_, copies_size_);
  if (copies_) base::pool_deallocate(copies_, copies_cap_);
  copies_ = bigger;
  copies_cap_ = cap;
}

void OutputQueue::append_copy(const uint8_t* data, size_t len) {
  if (len == 0) return;
  size_t off = copies_size_;
  if (copies_cap_ - off < len) grow_copies(len);
  copy_small_or_not(copies_ + off, data, len);
  copies_size_ = off + len;
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
  copies_size_ = 0;
  pieces_.clear();
  first_ = 0;
  bytes_ = 0;
}

size_t OutputQueue::build_iovecs(iovec* iov, size_t max) const {
  size_t n = 0;
  for (size_t i = first_; i < pieces_.size() && n < max; ++i) {
    const Piece& p = pieces_[i];
    const uint8_t* base = p.copied ? reinterpret_cast<const uint8_t*>(copies_) + p.offset
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
  if (copies_) base::pool_deallocate(copies_, copies_cap_);
  copies_ = nullptr;
  copies_cap_ = 0;
  decltype(pieces_)().swap(pieces_);
}

void OutputQueue::copy_to(std::string& out) const {
  for (size_t i = first_; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    const char* base = p.copied ? copies_ + p.offset
                                : reinterpret_cast<const char*>(p.ref.data()) + p.offset;
    out.append(base, p.len);
  }
}

}  // namespace uringrpc::transport
