// Status texts of the message size limits; see message_limits.h.
#include "rpc/message_limits.h"

#include <string>

namespace uringrpc::rpc {

Status send_limit_status(size_t size, size_t limit) {
  return {StatusCode::RESOURCE_EXHAUSTED,
          "Sent message larger than max (" + std::to_string(size) + " vs. " + std::to_string(limit) + ")"};
}

}  // namespace uringrpc::rpc
