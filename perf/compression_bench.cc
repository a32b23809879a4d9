// Compression library benchmark: zlib against libdeflate on the whole-buffer work gRPC
// messages need (gzip compress, gzip decompress into a bounded buffer), at 1 KiB and
// 64 KiB. Run by `make compression-bench`; its figures are in perf/README.md.
#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// Compressible like typical protobuf payloads: repeated field names and small varying
// numbers, not all zeros (which every compressor handles in no time).
std::string payload(size_t n) {
  std::string s;
  unsigned x = 12345;
  while (s.size() < n) {
    x = x * 1103515245 + 12345;
    s += "{\"user_id\":" + std::to_string(x % 100000) + ",\"name\":\"user" + std::to_string(x % 977) +
         "\",\"active\":true,\"score\":" + std::to_string((x >> 8) % 1000) + "}";
  }
  s.resize(n);
  return s;
}

// Thread CPU time, not wall time: the machine is shared, and time spent descheduled is
// not the library's. The best of 9 rounds of ~40 ms each, for the same reason.
double thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

// Nanoseconds per call of f.
template <class F>
double time_ns(F&& f) {
  double best = 1e18;
  for (int round = 0; round < 9; ++round) {
    size_t iters = 0;
    double start = thread_ns(), now = start;
    while (now - start < 40e6) {
      for (int i = 0; i < 16; ++i) f();
      iters += 16;
      now = thread_ns();
    }
    best = std::min(best, (now - start) / iters);
  }
  return best;
}

// zlib gzip with its default level (6), as a gRPC implementation on zlib compresses.
size_t zlib_gzip(const std::string& in, std::vector<uint8_t>& out) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  out.resize(deflateBound(&z, in.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  size_t n = z.total_out;
  deflateEnd(&z);
  return n;
}

size_t zlib_gunzip(const uint8_t* in, size_t n, std::vector<uint8_t>& out) {
  z_stream z{};
  inflateInit2(&z, 15 + 16);
  z.next_in = const_cast<Bytef*>(in);
  z.avail_in = static_cast<uInt>(n);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (inflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  size_t r = z.total_out;
  inflateEnd(&z);
  return r;
}

}  // namespace

int main() {
  std::printf("command: make compression-bench (build/perf/compression-bench); zlib %s, libdeflate %s, level 6\n",
              zlibVersion(), LIBDEFLATE_VERSION_STRING);
  std::printf("%-10s %-8s %12s %12s %10s\n", "library", "size", "compress", "decompress", "ratio");
  libdeflate_compressor* c = libdeflate_alloc_compressor(6);
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  for (size_t size : {size_t{1024}, size_t{64 * 1024}}) {
    std::string in = payload(size);
    std::vector<uint8_t> packed, unpacked(size);
    // zlib: a fresh stream per message, as a per-message codec must (init is part of the cost).
    size_t zn = 0;
    double zc = time_ns([&] { zn = zlib_gzip(in, packed); });
    std::vector<uint8_t> zpacked(packed.begin(), packed.begin() + zn);
    double zd = time_ns([&] { zlib_gunzip(zpacked.data(), zpacked.size(), unpacked); });
    if (std::memcmp(unpacked.data(), in.data(), size) != 0) std::abort();
    // libdeflate: one compressor and decompressor reused (per thread in the library).
    packed.assign(libdeflate_gzip_compress_bound(c, size), 0);
    size_t ln = 0;
    double lc = time_ns([&] { ln = libdeflate_gzip_compress(c, in.data(), size, packed.data(), packed.size()); });
    double ld = time_ns([&] {
      size_t got = 0;
      if (libdeflate_gzip_decompress(d, packed.data(), ln, unpacked.data(), unpacked.size(), &got) != LIBDEFLATE_SUCCESS)
        std::abort();
    });
    if (std::memcmp(unpacked.data(), in.data(), size) != 0) std::abort();
    auto row = [&](const char* lib, double comp, double decomp, size_t packed_size) {
      std::printf("%-10s %-8s %9.1f us %9.1f us %9.2fx   (%.0f / %.0f MB/s)\n", lib,
                  size == 1024 ? "1 KiB" : "64 KiB", comp / 1000, decomp / 1000,
                  double(size) / double(packed_size), size * 1e3 / comp, size * 1e3 / decomp);
    };
    row("zlib", zc, zd, zn);
    row("libdeflate", lc, ld, ln);
  }
  libdeflate_free_compressor(c);
  libdeflate_free_decompressor(d);
}
