// Unit tests for the message codec of src/rpc/compression.h: round trips through zlib (the
// reference implementation a client would use), the size limit at its exact boundary, a
// gzip bomb, corrupt and truncated input, and the header-name parsing.
#include "rpc/compression.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "../common/gzip_bomb.h"

namespace uringrpc::rpc {
namespace {

// Compressed by zlib, not by the code under test, so a round trip proves interoperability.
// windowBits 15: zlib format (gRPC's "deflate"); 15 + 16: gzip.
std::string zlib_compress(std::string_view in, Compression c, int level = 6) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, c == Compression::kGzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zlib_decompress(std::string_view in, Compression c) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, c == Compression::kGzip ? 31 : 15), Z_OK);
  std::string out;
  char buf[16384];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

std::string text(size_t n) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i) s += "field_" + std::to_string(i % 97) + "=value;";
  s.resize(n);
  return s;
}

// 1 GiB of zeros in about 1 MiB of gzip; built once.
const std::string& gzip_bomb() {
  static const std::string bomb = testing::gzip_of_zero_mebibytes(1024);
  return bomb;
}

// Peak resident memory of this process so far, from /proc (kB).
long peak_rss_kb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) kb = std::atol(line + 6);
  }
  if (f) std::fclose(f);
  return kb;
}

class Codec : public ::testing::TestWithParam<Compression> {};

TEST_P(Codec, RoundTripsThroughZlibBothWays) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{1024}, size_t{64 * 1024}, size_t{3 << 20}}) {
    std::string plain = text(n);
    Inflated in = inflate_message(GetParam(), zlib_compress(plain, GetParam()), 4u << 20);
    ASSERT_EQ(in.error, InflateError::kNone) << n;
    EXPECT_EQ(in.message.view(), plain) << n;
    if (n < 64) continue;  // too short to shrink: sent as it is
    auto packed = deflate_message(GetParam(), plain);
    ASSERT_TRUE(packed) << n;
    EXPECT_LT(packed->size(), n / 2);
    EXPECT_EQ(zlib_decompress(packed->view(), GetParam()), plain) << n;
  }
}

// Messages are compressed in a buffer the thread reuses: what a larger message left there
// must not leak into the next, smaller one, nor the buffer's size into any result.
TEST_P(Codec, EachMessageCompressesTheSameWhateverCameBefore) {
  const std::string small = text(1000), large = text(512 * 1024), huge = text(2 << 20);
  auto first = deflate_message(GetParam(), small);
  ASSERT_TRUE(first);
  for (const std::string* before : {&large, &huge, &small}) {
    auto other = deflate_message(GetParam(), *before);
    ASSERT_TRUE(other);
    EXPECT_EQ(zlib_decompress(other->view(), GetParam()), *before);
    auto again = deflate_message(GetParam(), small);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->view(), first->view()) << "after a message of " << before->size() << " bytes";
    EXPECT_EQ(zlib_decompress(again->view(), GetParam()), small);
  }
}

TEST_P(Codec, LeavesIncompressibleMessagesUncompressed) {
  EXPECT_FALSE(deflate_message(GetParam(), ""));
  EXPECT_FALSE(deflate_message(GetParam(), "abc"));
  std::string noise;
  uint32_t x = 1;
  for (int i = 0; i < 4096; ++i) noise += static_cast<char>((x = x * 1664525 + 1013904223) >> 24);
  EXPECT_FALSE(deflate_message(GetParam(), noise));
}

TEST_P(Codec, MessageInflatingToExactlyTheLimitPassesOneMoreByteFails) {
  for (size_t limit : {size_t{0}, size_t{1}, size_t{4096}, size_t{100'000}, size_t{1} << 20}) {
    std::string at_limit(limit, 'a');
    Inflated ok = inflate_message(GetParam(), zlib_compress(at_limit, GetParam()), limit);
    ASSERT_EQ(ok.error, InflateError::kNone) << limit;
    EXPECT_EQ(ok.message.size(), limit);
    Inflated over = inflate_message(GetParam(), zlib_compress(at_limit + "a", GetParam()), limit);
    EXPECT_EQ(over.error, InflateError::kTooLarge) << limit;
  }
}

TEST_P(Codec, TruncatedCorruptOrPaddedInputIsCorrupt) {
  std::string packed = zlib_compress(text(10'000), GetParam());
  for (size_t cut : {size_t{0}, size_t{1}, size_t{2}, packed.size() / 2, packed.size() - 4, packed.size() - 1}) {
    EXPECT_EQ(inflate_message(GetParam(), packed.substr(0, cut), 1 << 20).error, InflateError::kCorrupt) << cut;
  }
  // A bit flipped in the middle: a bad block, or a checksum (CRC32 / Adler-32) mismatch.
  for (size_t at = 2; at < packed.size(); at += packed.size() / 7) {
    std::string bad = packed;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    EXPECT_EQ(inflate_message(GetParam(), bad, 1 << 20).error, InflateError::kCorrupt) << at;
  }
  EXPECT_EQ(inflate_message(GetParam(), packed + "x", 1 << 20).error, InflateError::kCorrupt);
  EXPECT_EQ(inflate_message(GetParam(), "not compressed at all", 1 << 20).error, InflateError::kCorrupt);
}

INSTANTIATE_TEST_SUITE_P(GzipAndDeflate, Codec, ::testing::Values(Compression::kGzip, Compression::kDeflate),
                         [](const auto& info) { return std::string(encoding_name(info.param)); });

TEST(Compression, GzipBombConstructionMakesValidGzipOfZeros) {
  // The bomb's construction checked with zlib on 8 MiB (inflating the whole 1 GiB would
  // take seconds): a valid stream of exactly that many zeros, trailer included.
  const std::string bomb = testing::gzip_of_zero_mebibytes(8);
  ASSERT_LT(gzip_bomb().size(), 2u << 20);
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 31), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bomb.data()));
  z.avail_in = static_cast<uInt>(bomb.size());
  std::string buf(1 << 20, 'x');
  int rc;
  bool all_zero = true;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&z, Z_NO_FLUSH);
    all_zero = all_zero && buf.find_first_not_of('\0', 0) >= buf.size() - z.avail_out;
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END);
  EXPECT_EQ(z.total_out, uLong{8} << 20);
  EXPECT_TRUE(all_zero);
  inflateEnd(&z);
}

TEST(Compression, GzipBombStopsAtTheLimitWithoutInflatingIt) {
  const std::string& bomb = gzip_bomb();
  long before = peak_rss_kb();
  Inflated r = inflate_message(Compression::kGzip, bomb, 4u << 20);
  EXPECT_EQ(r.error, InflateError::kTooLarge);
  // At most the 4 MiB limit and some slack, never the 1 GiB it inflates to.
  EXPECT_LT(peak_rss_kb() - before, 32 * 1024);
}

TEST(Compression, GzipWhoseTrailerLiesAboutItsSizeStillInflatesCorrectlyOrFails) {
  std::string plain = text(50'000);
  std::string packed = zlib_compress(plain, Compression::kGzip);
  // ISIZE says 10 bytes: libdeflate checks it, so the message is corrupt, not cut short.
  std::string lie = packed;
  lie[lie.size() - 4] = 10;
  lie[lie.size() - 3] = lie[lie.size() - 2] = lie[lie.size() - 1] = 0;
  EXPECT_EQ(inflate_message(Compression::kGzip, lie, 1 << 20).error, InflateError::kCorrupt);
}

TEST(Compression, CallRejectsCompressedMessageWithoutEncodingAsInternal) {
  CallCompression none;
  none.start(Compression::kNone, encoding_bit(Compression::kNone), Compression::kNone);
  Bytes m("x");
  auto status = none.inflate(m, 100);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, StatusCode::INTERNAL);

  CallCompression gzip;
  gzip.start(Compression::kGzip, encoding_bit(Compression::kNone), Compression::kNone);
  Bytes bomb = Bytes::borrow(gzip_bomb());
  status = gzip.inflate(bomb, 1000);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, StatusCode::RESOURCE_EXHAUSTED);
  Bytes junk("junk");
  status = gzip.inflate(junk, 1000);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->code, StatusCode::INTERNAL);
}

TEST(Compression, ResponsesAreCompressedOnlyWithAnAlgorithmTheClientAccepts) {
  CallCompression c;
  c.start(Compression::kNone, parse_accept_encoding("identity,deflate"), Compression::kGzip);
  EXPECT_EQ(c.response(), Compression::kNone);  // the default, but this client has no gzip
  c.set_response(Compression::kDeflate);
  EXPECT_EQ(c.response(), Compression::kDeflate);
  std::string plain = text(4096);
  Bytes m = Bytes::copy(plain);
  EXPECT_FALSE(c.compress(m, /*no_compress=*/true));
  EXPECT_EQ(m.view(), plain);
  EXPECT_TRUE(c.compress(m, false));
  EXPECT_EQ(zlib_decompress(m.view(), Compression::kDeflate), plain);

  CallCompression silent;  // no grpc-accept-encoding at all: identity only
  silent.start(Compression::kNone, parse_accept_encoding(""), Compression::kGzip);
  EXPECT_EQ(silent.response(), Compression::kNone);
}

TEST(Compression, ParsesEncodingNames) {
  EXPECT_EQ(parse_encoding(""), Compression::kNone);
  EXPECT_EQ(parse_encoding("identity"), Compression::kNone);
  EXPECT_EQ(parse_encoding("gzip"), Compression::kGzip);
  EXPECT_EQ(parse_encoding("deflate"), Compression::kDeflate);
  EXPECT_EQ(parse_encoding("snappy"), std::nullopt);
  EXPECT_EQ(parse_encoding("GZIP"), std::nullopt);
  const EncodingSet all = encoding_bit(Compression::kNone) | encoding_bit(Compression::kDeflate) |
                          encoding_bit(Compression::kGzip);
  EXPECT_EQ(parse_accept_encoding("identity,deflate,gzip"), all);
  EXPECT_EQ(parse_accept_encoding(" gzip ,\tdeflate"), all);
  EXPECT_EQ(parse_accept_encoding("gzip"), encoding_bit(Compression::kNone) | encoding_bit(Compression::kGzip));
  EXPECT_EQ(parse_accept_encoding("br,snappy,,"), encoding_bit(Compression::kNone));
}

}  // namespace
}  // namespace uringrpc::rpc
