// FixedHeaders: a header block that is the same for every response of its kind (the head
// of a gRPC response, the trailers of an OK status), made into nghttp2's nv array once, at
// start-up, from literals that nghttp2 refers to instead of copying. The rpc layer keeps
// one per kind and submits it as it is: no list is built, formatted or converted per call.
#pragma once

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string_view>

namespace uringrpc::http2 {

class FixedHeaders {
 public:
  struct Field {
    std::string_view name;  // lower case: nghttp2 sends a name it does not copy as it is
    std::string_view value;
  };
  // Fields are literals (or other storage that lives as long as the program).
  FixedHeaders(std::initializer_list<Field> fields) {
    if (fields.size() > kMax) throw std::logic_error("FixedHeaders: too many fields");
    for (const Field& f : fields) {
      nv_[size_++] = {reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data())), f.name.size(), f.value.size(),
                      NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
      list_bytes_ += f.name.size() + f.value.size() + 32;
    }
  }
  FixedHeaders(const FixedHeaders&) = delete;
  FixedHeaders& operator=(const FixedHeaders&) = delete;

  const nghttp2_nv* data() const { return nv_.data(); }
  size_t size() const { return size_; }
  // As SETTINGS_MAX_HEADER_LIST_SIZE counts a block: name + value + 32 per field.
  size_t list_bytes() const { return list_bytes_; }

 private:
  static constexpr size_t kMax = 4;
  std::array<nghttp2_nv, kMax> nv_{};
  size_t size_ = 0;
  size_t list_bytes_ = 0;
};

}  // namespace uringrpc::http2
