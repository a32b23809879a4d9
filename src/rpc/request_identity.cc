// What the client says about the request itself, for ServerContext::authority() and
// user_agent(): kept out of call.cc, which is about the call's life. Neither allocates per
// RPC (the authority is a reference on its nghttp2 buffer, see Call::authority_).
#include <string_view>

#include "rpc/call.h"

namespace uringrpc::rpc {

void Call::set_authority(std::string_view authority, nghttp2_rcbuf* buffer) noexcept {
  authority_ = authority;
  authority_buf_ = buffer;
}

// user-agent is ordinary metadata (gRPC does not reserve it), so it stays in the request's
// metadata, where client_metadata() shows it too: found there, not copied.
std::string_view Call::user_agent() const {
  for (const http2::RawField& f : raw_metadata_) {
    if (f.name() == "user-agent") return f.value();
  }
  return {};
}

}  // namespace uringrpc::rpc
