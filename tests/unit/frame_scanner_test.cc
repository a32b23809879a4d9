// Unit tests for FrameScanner: which DATA frames it reports to the session for judging
// (a DATA frame on a stream nghttp2 may have forgotten) and which it lets through with the
// bytes around them (a request's body right after its own complete header block).
#include "http2/frame_scanner.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace uringrpc::http2 {
namespace {

constexpr uint8_t kData = 0, kHeaders = 1, kPriority = 2, kRstStream = 3, kContinuation = 9;
constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4;

void frame(std::vector<uint8_t>& out, uint8_t type, uint8_t flags, uint32_t stream, size_t len) {
  out.push_back(static_cast<uint8_t>(len >> 16));
  out.push_back(static_cast<uint8_t>(len >> 8));
  out.push_back(static_cast<uint8_t>(len));
  out.push_back(type);
  out.push_back(flags);
  out.push_back(static_cast<uint8_t>(stream >> 24));
  out.push_back(static_cast<uint8_t>(stream >> 16));
  out.push_back(static_cast<uint8_t>(stream >> 8));
  out.push_back(static_cast<uint8_t>(stream));
  out.insert(out.end(), len, 0);
}

std::vector<uint8_t> preface() { return std::vector<uint8_t>(24, 'P'); }

// The streams of the DATA frames reported, feeding the bytes in chunks of `chunk`; each
// chunk is a read of its own when `reads`.
std::vector<int32_t> reported(const std::vector<uint8_t>& bytes, size_t chunk, bool reads = false) {
  FrameScanner scanner;
  std::vector<int32_t> out;
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    if (reads) scanner.new_read();
    const uint8_t* p = bytes.data() + at;
    size_t left = std::min(chunk, bytes.size() - at);
    while (left > 0) {
      FrameScanner::Found found;
      size_t used = scanner.scan(p, left, &found);
      if (found.kind == FrameScanner::Found::kData) out.push_back(found.stream);
      if (used == 0) break;
      p += used;
      left -= used;
    }
  }
  return out;
}

TEST(FrameScanner, ARequestBodyAfterItsOwnHeadersIsNotReported) {
  std::vector<uint8_t> b = preface();
  frame(b, kHeaders, kEndHeaders, 1, 20);
  frame(b, kData, kEndStream, 1, 5);
  frame(b, kHeaders, kEndHeaders, 3, 20);
  frame(b, kData, 0, 3, 5);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{9}, size_t{10}, b.size()}) {
    EXPECT_TRUE(reported(b, chunk).empty()) << chunk;
  }
}

TEST(FrameScanner, DataOnStreamsNotOpenedInThisReadIsReported) {
  std::vector<uint8_t> b = preface();
  frame(b, kHeaders, kEndHeaders, 1, 20);
  frame(b, kData, 0, 1, 5);
  frame(b, kData, kEndStream, 1, 5);    // a second DATA: its stream is still open
  frame(b, kHeaders, kEndHeaders, 3, 20);
  frame(b, kData, 0, 5, 5);             // another stream's
  frame(b, kHeaders, 0, 7, 20);         // header block not complete ...
  frame(b, kContinuation, kEndHeaders, 7, 4);
  frame(b, kData, 0, 7, 5);             // ... so after CONTINUATION
  frame(b, kPriority, 0, 9, 5);
  frame(b, kData, 0, 9, 5);             // after PRIORITY
  frame(b, kData, 0, 11, 0);            // before any HEADERS of its stream, empty
  frame(b, kHeaders, kEndHeaders | kEndStream, 13, 20);
  frame(b, kData, 0, 13, 5);            // after its stream's END_STREAM
  std::vector<int32_t> want = {5, 7, 9, 11, 13};
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{9}, size_t{10}, b.size()}) {
    EXPECT_EQ(reported(b, chunk), want) << chunk;
  }
}

TEST(FrameScanner, BodiesAfterABatchOfRequestHeadsAreNotReported) {
  // How nghttp2 clients send concurrent requests: their HEADERS first, then their DATA.
  std::vector<uint8_t> b = preface();
  for (uint32_t id = 1; id <= 9; id += 2) frame(b, kHeaders, kEndHeaders, id, 20);
  for (uint32_t id = 1; id <= 9; id += 2) frame(b, kData, kEndStream, id, 5);
  for (size_t chunk : {size_t{1}, size_t{10}, b.size()}) EXPECT_TRUE(reported(b, chunk).empty()) << chunk;
}

TEST(FrameScanner, DataOutsideTheRunOfStreamsOpenedInThisReadIsReported) {
  std::vector<uint8_t> b = preface();
  frame(b, kHeaders, kEndHeaders, 1, 20);
  frame(b, kHeaders, kEndHeaders, 3, 20);
  frame(b, kHeaders, kEndHeaders, 7, 20);   // skips 5: a new run starts at 7
  frame(b, kData, 0, 3, 5);                 // not in the run any more
  frame(b, kData, 0, 5, 5);                 // never opened
  frame(b, kData, 0, 7, 5);
  frame(b, kData, 0, 8, 5);                 // even: a server's identifier
  frame(b, kRstStream, 0, 7, 4);            // the client closes 7 ...
  frame(b, kData, 0, 7, 5);                 // ... so its DATA is judged
  frame(b, kHeaders, kEndHeaders, 7, 20);   // trailers-like HEADERS on 7 opens nothing
  frame(b, kData, 0, 7, 5);
  frame(b, kHeaders, kEndHeaders | kEndStream, 9, 20);
  frame(b, kData, 0, 9, 5);                 // after its stream's END_STREAM
  std::vector<int32_t> want = {3, 5, 8, 7, 7, 9};
  for (size_t chunk : {size_t{1}, size_t{10}, b.size()}) EXPECT_EQ(reported(b, chunk), want) << chunk;
}

TEST(FrameScanner, DataInTheReadAfterItsHeadersIsReported) {
  // Between two reads the session sends, and sending may close the stream.
  std::vector<uint8_t> b = preface();
  frame(b, kHeaders, kEndHeaders, 1, 20);
  size_t split = b.size();
  frame(b, kData, 0, 1, 5);
  EXPECT_EQ(reported(b, split, true), std::vector<int32_t>{1});
  EXPECT_TRUE(reported(b, split, false).empty());
}

TEST(FrameScanner, DataAsTheFirstFrameIsReported) {
  std::vector<uint8_t> b = preface();
  frame(b, kData, 0, 1, 3);
  EXPECT_EQ(reported(b, b.size()), std::vector<int32_t>{1});
}

}  // namespace
}  // namespace uringrpc::http2
