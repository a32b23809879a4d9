// Codec for protobuf messages: parses straight from the receive buffer (no copy of the
// payload first) and serializes into one owned buffer.
#pragma once

#include <google/protobuf/message_lite.h>

#include <limits>
#include <string>
#include <type_traits>

#include "uringrpc/codec.h"
#include "uringrpc/status.h"

namespace uringrpc {

template <class M>
struct Codec<M, std::enable_if_t<std::is_base_of_v<google::protobuf::MessageLite, M>>> {
  // An empty message (google.protobuf.Empty, a request of defaults) is common enough to
  // skip the string and the parser for: the results are the ones they would give.
  static Bytes encode(const M& m) {
    if (m.ByteSizeLong() == 0) return Bytes();
    std::string out;
    m.SerializeToString(&out);
    return Bytes(std::move(out));
  }
  static bool decode(Bytes&& in, M& out) {
    if (in.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
    if (in.empty()) {
      out.Clear();
      if (out.IsInitialized()) return true;  // else the parser fails it, with its log line
    }
    return out.ParseFromArray(in.data(), static_cast<int>(in.size()));
  }
};

// A Status with rich error details (Status::details): `rpc_status` is a google.rpc.Status
// (googleapis' google/rpc/status.proto: code, message, repeated google.protobuf.Any
// details), serialized as it is; by convention its code and message are `code` and
// `message`. End the call with it: co_return it, or ctx.abort(it) from a streaming handler.
//   google::rpc::Status st;  st.set_code(3);  st.set_message("bad name");
//   st.add_details()->PackFrom(field_violation);
//   co_return uringrpc::make_status(StatusCode::INVALID_ARGUMENT, "bad name", st);
inline Status make_status(StatusCode code, std::string message, const google::protobuf::MessageLite& rpc_status) {
  Status s{code, std::move(message)};
  rpc_status.SerializeToString(&s.details);
  return s;
}

}  // namespace uringrpc
