// Codec<M>: how a message type becomes wire bytes and back. Bytes and std::string are
// built in; include <uringrpc/protobuf.h> for protobuf messages.
#pragma once

#include <string>
#include <type_traits>

#include "uringrpc/bytes.h"

namespace uringrpc {

template <class M, class Enable = void>
struct Codec;

template <>
struct Codec<Bytes> {
  static Bytes encode(const Bytes& m) { return m; }
  static Bytes encode(Bytes&& m) { return std::move(m); }
  static bool decode(Bytes&& in, Bytes& out) {
    out = std::move(in);
    return true;
  }
};

template <>
struct Codec<std::string> {
  static Bytes encode(std::string m) { return Bytes(std::move(m)); }
  static bool decode(Bytes&& in, std::string& out) {
    out.assign(in.view());
    return true;
  }
};

}  // namespace uringrpc
