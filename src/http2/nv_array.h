// NvArray: a HeaderList as the nghttp2_nv array nghttp2's submit calls take. nghttp2 copies
// the fields it is given (but for HeaderField::lasting ones), so the array only has to
// outlive the submit call: on the stack
// for the few fields a gRPC response has, pooled beyond that. Used by Session (response
// headers) and SessionCallbacks (trailers).
#pragma once

#include <nghttp2/nghttp2.h>

#include <vector>

#include "http2/stream.h"

namespace uringrpc::http2 {

class NvArray {
 public:
  explicit NvArray(const HeaderList& fields) : size_(fields.size()) {
    if (size_ > kInline) spill_.resize(size_);
    nghttp2_nv* out = data();
    for (size_t i = 0; i < size_; ++i) out[i] = make_nv(fields[i]);
  }
  nghttp2_nv* data() { return size_ > kInline ? spill_.data() : inline_; }
  size_t size() const { return size_; }

 private:
  static nghttp2_nv make_nv(const HeaderField& f) {
    return {reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data())),
            reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data())), f.name.size(), f.value.size(),
            f.lasting ? uint8_t{NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE} : uint8_t{NGHTTP2_NV_FLAG_NONE}};
  }
  static constexpr size_t kInline = 8;
  size_t size_;
  nghttp2_nv inline_[kInline];
  std::vector<nghttp2_nv, base::PoolAllocator<nghttp2_nv>> spill_;
};

}  // namespace uringrpc::http2
