// Message compression a handler or ServerOptions can choose for responses, and the
// per-write options of ServerContext::write. Requests in gzip or deflate are always
// accepted; the library inflates them before a handler sees them (src/rpc/compression.h).
#pragma once

#include <cstdint>

namespace uringrpc {

// gRPC's grpc-encoding values the server speaks. kDeflate is gRPC's "deflate": the zlib
// format (RFC 1950), as every gRPC implementation sends it.
enum class Compression : uint8_t { kNone = 0, kDeflate = 1, kGzip = 2 };

// Options of one ServerContext::write.
struct WriteOptions {
  // Send this message uncompressed even though the call compresses its responses (a
  // secret next to attacker-chosen text in one compressed message leaks through its size:
  // CRIME/BREACH).
  bool no_compress = false;
};

}  // namespace uringrpc
