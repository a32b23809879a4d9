// The gzip bomb of gzip_bomb.h, built with zlib (see there).
#include "gzip_bomb.h"

#include <zlib.h>

#include <cstdint>

namespace uringrpc::testing {

std::string gzip_of_zero_mebibytes(int blocks) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY);
  std::string zeros(1 << 20, '\0');
  auto run = [&](bool feed, int flush) {
    std::string out;
    char buf[1 << 16];
    z.next_in = reinterpret_cast<Bytef*>(zeros.data());
    z.avail_in = feed ? static_cast<uInt>(zeros.size()) : 0;
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, flush);
      out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
    return out;
  };
  std::string out = run(true, Z_FULL_FLUSH);   // gzip header + first block
  std::string block = run(true, Z_FULL_FLUSH);  // a block that needs no history
  std::string tail = run(false, Z_FINISH);      // last (empty) block + trailer
  deflateEnd(&z);
  for (int i = 1; i < blocks; ++i) out += block;
  tail.resize(tail.size() - 8);
  uLong crc_block = crc32(0, reinterpret_cast<const Bytef*>(zeros.data()), static_cast<uInt>(zeros.size()));
  uLong crc = crc_block;
  for (int i = 1; i < blocks; ++i) crc = crc32_combine(crc, crc_block, static_cast<z_off_t>(zeros.size()));
  uint32_t isize = static_cast<uint32_t>(blocks) << 20;
  for (int i = 0; i < 4; ++i) tail += static_cast<char>((crc >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) tail += static_cast<char>((isize >> (8 * i)) & 0xff);
  return out + tail;
}

}  // namespace uringrpc::testing
