// Codec for protobuf messages: parses straight from the receive buffer (no copy of the
// payload first) and serializes into one owned buffer.
#pragma once

#include <google/protobuf/message_lite.h>

#include <limits>
#include <type_traits>

#include "uringrpc/codec.h"

namespace uringrpc {

template <class M>
struct Codec<M, std::enable_if_t<std::is_base_of_v<google::protobuf::MessageLite, M>>> {
  static Bytes encode(const M& m) {
    std::string out;
    m.SerializeToString(&out);
    return Bytes(std::move(out));
  }
  static bool decode(Bytes&& in, M& out) {
    if (in.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
    return out.ParseFromArray(in.data(), static_cast<int>(in.size()));
  }
};

}  // namespace uringrpc
