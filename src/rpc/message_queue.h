// MessageQueue: a call's FIFO of messages (received and not yet read, or written and not
// yet sent). A unary call holds one at a time and most streams a few, so the queue starts
// without memory and takes one pooled block on first use, doubling when full. std::deque,
// which it replaces, takes two blocks on construction whether used or not: four pool
// round trips per call for the two queues (callgrind).
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include "base/small_pool.h"

namespace uringrpc::rpc {

template <class T>
class MessageQueue {
 public:
  MessageQueue() = default;
  MessageQueue(const MessageQueue&) = delete;
  MessageQueue& operator=(const MessageQueue&) = delete;
  ~MessageQueue() {
    clear();
    if (buf_) base::pool_deallocate(buf_, cap_ * sizeof(T));
  }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() { return buf_[head_]; }

  void push_back(T&& v) {
    if (size_ == cap_) grow();
    new (&buf_[(head_ + size_) & (cap_ - 1)]) T(std::move(v));
    ++size_;
  }
  void pop_front() {
    buf_[head_].~T();
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  void clear() {
    while (size_ > 0) pop_front();
  }

 private:
  void grow() {
    size_t cap = cap_ ? cap_ * 2 : kFirstCapacity;  // powers of two: the index is a mask
    T* fresh = static_cast<T*>(base::pool_allocate(cap * sizeof(T)));
    for (size_t i = 0; i < size_; ++i) {
      T& old = buf_[(head_ + i) & (cap_ - 1)];
      new (&fresh[i]) T(std::move(old));
      old.~T();
    }
    if (buf_) base::pool_deallocate(buf_, cap_ * sizeof(T));
    buf_ = fresh;
    cap_ = cap;
    head_ = 0;
  }

  static constexpr size_t kFirstCapacity = 4;
  T* buf_ = nullptr;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace uringrpc::rpc
