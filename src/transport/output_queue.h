// OutputQueue: bytes a connection will send in its next batched sendmsg. Small frames
// (headers, SETTINGS, DATA frame headers) are copied into one growing buffer; message
// payloads are referenced (Bytes) and go to the kernel as their own iovecs, uncopied.
// Both buffers are pooled blocks handed back whenever the queue drains, so memory follows
// the connections that are sending, not every connection that ever sent (idle-1k).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/small_pool.h"
#include "uringrpc/bytes.h"

namespace uringrpc::transport {

class OutputQueue {
 public:
  OutputQueue() = default;
  OutputQueue(OutputQueue&& o) noexcept
      : copies_(o.copies_), copies_size_(o.copies_size_), copies_cap_(o.copies_cap_),
        pieces_(std::move(o.pieces_)), first_(o.first_), bytes_(o.bytes_) {
    o.copies_ = nullptr;
    o.copies_size_ = o.copies_cap_ = 0;
    o.pieces_.clear();
    o.first_ = o.bytes_ = 0;
  }
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;
  ~OutputQueue() { release(); }

  void append_copy(const uint8_t* data, size_t len);
  void append_ref(Bytes payload);
  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  // How many iovecs build_iovecs would fill with no limit.
  size_t pieces() const { return pieces_.size() - first_; }
  void clear();

  // Fills iov with the queued pieces (after all appends are done: copied pieces move
  // when the buffer grows). Returns the number of iovecs, at most max.
  size_t build_iovecs(iovec* iov, size_t max) const;
  // Drops the first n bytes (a partial send), keeping the rest queued in order.
  void consume(size_t n);
  // Copies everything out contiguously (for TLS, which encrypts whole records).
  void copy_to(std::string& out) const;

 private:
  struct Piece {
    bool copied;       // true: bytes [offset, offset+len) of copies_
    size_t offset;
    size_t len;
    Bytes ref;         // when !copied
  };
  void release();  // drained: hand both buffers back to the pool
  void grow_copies(size_t more);

  // The copies' buffer: a pooled block of copies_cap_ bytes (null when drained), filled up
  // to copies_size_. Not a std::string: an append of a frame header is a compare, a copy
  // and a store, with no terminator to keep.
  char* copies_ = nullptr;
  size_t copies_size_ = 0;
  size_t copies_cap_ = 0;
  std::vector<Piece, base::PoolAllocator<Piece>> pieces_;
  size_t first_ = 0;   // pieces before it were fully sent
  size_t bytes_ = 0;
};

}  // namespace uringrpc::transport
