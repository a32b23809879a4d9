// libFuzzer target for the gRPC message deframer (src/rpc/deframer.h). The input picks a
// size limit and a chunking; the property checked is that chunking never changes what
// comes out (messages, flags, final error), and that a partial message holds no more
// memory than its declared length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "rpc/deframer.h"

namespace {

using uringrpc::Bytes;
using uringrpc::rpc::Deframer;

struct Out {
  std::vector<std::string> messages;
  std::vector<bool> compressed;
  Deframer::Error error = Deframer::Error::kNone;
};

// The whole stream in one chunk: the reference the chunked run must agree with.
Out feed_whole(size_t limit, const Bytes& stream) {
  Out out;
  Deframer d(limit);
  out.error = d.feed(stream, [&](Bytes m, bool c) {
    out.messages.push_back(m.str());
    out.compressed.push_back(c);
  });
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  // Two bytes of limit keep it small, so kMessageTooLarge and the eager/lazy reserve
  // paths are all reachable with short inputs; 0xFFFF means "the default 4 MiB".
  size_t limit = (size_t{data[0]} << 8) | data[1];
  if (limit == 0xFFFF) limit = 4u << 20;
  // Chunk sizes come from a small seed so the same stream is also tried in other cuts.
  uint32_t seed = data[2];
  data += 3;
  size = size - 3;

  // One owned buffer for the stream; chunks are slices of it, as receive buffers are.
  const Bytes stream = Bytes::copy({reinterpret_cast<const char*>(data), size});
  const Out whole = feed_whole(limit, stream);

  Out chunked;
  Deframer d(limit);
  size_t pos = 0;
  while (pos < size) {
    seed = seed * 1103515245u + 12345u;
    size_t n = 1 + (seed >> 16) % 13;  // 1..13 bytes: splits prefixes and payloads alike
    if ((seed >> 8) & 1) n = 1 + (seed >> 12) % 4096;
    if (n > size - pos) n = size - pos;
    Bytes chunk = stream.slice(pos, n);
    chunked.error = d.feed(chunk, [&](Bytes m, bool c) {
      // A message wholly inside this chunk is a slice of it; a zero-length one pins nothing.
      if (m.empty()) FUZZ_CHECK(m.owner() == nullptr);
      chunked.messages.push_back(m.str());
      chunked.compressed.push_back(c);
    });
    pos += n;
    FUZZ_CHECK(d.error() == chunked.error);
    if (d.error() == Deframer::Error::kNone) {
      FUZZ_CHECK(d.buffered_bytes() <= Deframer::kEagerReserveLimit + d.pending_message_length() + 5);
      // The assembly buffer never exceeds the declared length, give or take the string's
      // growth policy (libstdc++ rounds a reserve of 16..29 bytes up to 30), the same
      // slack the unit tests allow.
      FUZZ_CHECK(d.reserved_bytes() <= d.pending_message_length() + 32);
      FUZZ_CHECK(!d.mid_message() || d.pending_message_length() <= limit || d.buffered_bytes() < 5);
    }
  }
  FUZZ_CHECK(chunked.error == whole.error);
  FUZZ_CHECK(chunked.messages == whole.messages);
  FUZZ_CHECK(chunked.compressed == whole.compressed);
  for (const auto& m : whole.messages) FUZZ_CHECK(m.size() <= limit);
  return 0;
}
