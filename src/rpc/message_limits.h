// The statuses of gRPC's message size limits, worded as gRPC C++'s message size filter words
// them (clients and tests match on them). Call uses them when a message crosses a limit.
#pragma once

#include <cstddef>

#include "uringrpc/status.h"

namespace uringrpc::rpc {

// RESOURCE_EXHAUSTED "Sent message larger than max (size vs. limit)": a handler's response
// message over calls.max_send_message_bytes.
Status send_limit_status(size_t size, size_t limit);

}  // namespace uringrpc::rpc
