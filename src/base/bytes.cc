// Heap-owned storage for Bytes built from a std::string (uringrpc/bytes.h). In base because
// every layer passes Bytes: loop's buffer ring, transport's output queue, rpc's messages.
#include "uringrpc/bytes.h"

namespace uringrpc {
namespace {

class StringOwner final : public BufferOwner {
 public:
  explicit StringOwner(std::string s) : s_(std::move(s)) {}
  const std::string& str() const { return s_; }

 protected:
  void release() noexcept override { delete this; }

 private:
  std::string s_;
};

}  // namespace

Bytes::Bytes(std::string s) {
  if (s.empty()) return;
  auto* owner = new StringOwner(std::move(s));
  owner_ = owner;
  owner_->ref();
  data_ = reinterpret_cast<const uint8_t*>(owner->str().data());
  size_ = owner->str().size();
}

}  // namespace uringrpc
