// Bytes: the read-only message payload type that flows between the wire and handlers.
// It either owns heap storage, borrows storage that outlives it, or shares a shard's
// receive buffer (zero-copy: the buffer goes back to the ring when the last Bytes goes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace uringrpc {

// Reference-counted storage behind a Bytes. Counts are not atomic: a Bytes belongs to
// the shard that made it and may be moved, but not shared, across threads.
class BufferOwner {
 public:
  void ref() noexcept { ++refs_; }
  void unref() noexcept {
    if (--refs_ == 0) release();
  }

 protected:
  virtual ~BufferOwner() = default;
  // Called when the last reference goes: free, or hand the memory back to a pool.
  virtual void release() noexcept = 0;

 private:
  uint32_t refs_ = 0;
};

class Bytes {
 public:
  Bytes() noexcept = default;
  // Takes ownership of the string's storage (no copy of its characters).
  Bytes(std::string s);  // NOLINT(google-explicit-constructor): payloads convert freely
  Bytes(const char* s) : Bytes(std::string(s)) {}  // NOLINT
  // Refers to storage the caller guarantees outlives every copy (string literals, statics).
  static Bytes borrow(std::string_view s) noexcept {
    return Bytes(nullptr, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  static Bytes copy(std::string_view s) { return Bytes(std::string(s)); }
  // A view into storage kept alive by `owner` (may be null for borrowed storage).
  Bytes(BufferOwner* owner, const uint8_t* data, size_t size) noexcept
      : owner_(owner), data_(data), size_(size) {
    if (owner_) owner_->ref();
  }

  Bytes(const Bytes& o) noexcept : owner_(o.owner_), data_(o.data_), size_(o.size_) {
    if (owner_) owner_->ref();
  }
  Bytes(Bytes&& o) noexcept
      : owner_(std::exchange(o.owner_, nullptr)),
        data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)) {}
  Bytes& operator=(Bytes o) noexcept {
    swap(o);
    return *this;
  }
  ~Bytes() {
    if (owner_) owner_->unref();
  }
  void swap(Bytes& o) noexcept {
    std::swap(owner_, o.owner_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }

  const uint8_t* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data_), size_};
  }
  std::string str() const { return std::string(view()); }
  // The same storage, narrowed; shares ownership.
  Bytes slice(size_t offset, size_t length) const noexcept {
    return Bytes(owner_, data_ + offset, length);
  }
  // True when this view shares storage owned by someone else (a receive buffer).
  const BufferOwner* owner() const noexcept { return owner_; }

  friend bool operator==(const Bytes& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const Bytes& a, const Bytes& b) noexcept { return a.view() == b.view(); }
  friend bool operator==(const Bytes& a, const char* b) noexcept { return a.view() == std::string_view(b); }

 private:
  BufferOwner* owner_ = nullptr;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace uringrpc
