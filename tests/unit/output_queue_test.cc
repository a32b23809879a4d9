// Unit tests for transport::OutputQueue (src/transport/output_queue.h), the bytes a
// connection sends in its next batched sendmsg: adjacent copies merge, payloads go out by
// reference, and a partial send keeps the rest queued in order, releasing what was sent.
#include "transport/output_queue.h"

#include <sys/uio.h>

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace uringrpc::transport {
namespace {

void copy(OutputQueue& q, std::string_view s) {
  q.append_copy(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// What the queue would hand to sendmsg, as strings (one per iovec).
std::vector<std::string> iovecs(const OutputQueue& q, size_t max = 64) {
  std::vector<iovec> iov(max);
  size_t n = q.build_iovecs(iov.data(), max);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.emplace_back(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

// Storage whose release the test can see: proves the queue drops a payload it sent. Declared
// before the queue in each test, so it outlives the queue's references.
struct CountedBuffer final : BufferOwner {
  std::string storage;
  int released = 0;
  explicit CountedBuffer(std::string s) : storage(std::move(s)) {}
  Bytes view() { return Bytes(this, reinterpret_cast<const uint8_t*>(storage.data()), storage.size()); }

 protected:
  void release() noexcept override { ++released; }
};

using Pieces = std::vector<std::string>;

TEST(OutputQueue, AdjacentCopiesGoOutAsOneIovec) {
  OutputQueue q;
  copy(q, "head");
  copy(q, "ers");
  EXPECT_EQ(q.pieces(), 1u);
  EXPECT_EQ(q.bytes(), 7u);
  EXPECT_EQ(iovecs(q), Pieces({"headers"}));
}

TEST(OutputQueue, CopiesOfEveryLengthKeepEveryByteAcrossGrowth) {
  // Short copies (frame headers, message prefixes) take a path of their own; appends past
  // the first block's 512 bytes move everything into a bigger one.
  OutputQueue q;
  std::string want;
  for (int round = 0; round < 3; ++round) {
    for (size_t len = 0; len <= 40; ++len) {
      std::string s;
      for (size_t i = 0; i < len; ++i) s.push_back(static_cast<char>('a' + (want.size() + i) % 26));
      copy(q, s);
      want += s;
    }
  }
  ASSERT_GT(want.size(), 2048u);
  EXPECT_EQ(q.bytes(), want.size());
  EXPECT_EQ(iovecs(q), Pieces{want});
  OutputQueue moved(std::move(q));
  EXPECT_EQ(iovecs(moved), Pieces{want});
  EXPECT_TRUE(q.empty());
  moved.consume(want.size());
  EXPECT_TRUE(moved.empty());
  copy(moved, "after");  // a drained queue takes a fresh block
  EXPECT_EQ(iovecs(moved), Pieces{"after"});
}

TEST(OutputQueue, ReferencedPayloadIsSentFromItsOwnStorage) {
  CountedBuffer payload("payload");
  OutputQueue q;
  copy(q, "frame header");
  q.append_ref(payload.view());
  iovec iov[2];
  ASSERT_EQ(q.build_iovecs(iov, 2), 2u);
  EXPECT_EQ(iov[1].iov_base, payload.storage.data());
  EXPECT_EQ(iov[1].iov_len, payload.storage.size());
}

TEST(OutputQueue, CopyAfterAReferenceStartsANewPieceInOrder) {
  CountedBuffer payload("P");
  OutputQueue q;
  copy(q, "a");
  q.append_ref(payload.view());
  copy(q, "b");
  EXPECT_EQ(iovecs(q), Pieces({"a", "P", "b"}));
  EXPECT_EQ(q.bytes(), 3u);
}

TEST(OutputQueue, EmptyAppendsQueueNothing) {
  OutputQueue q;
  copy(q, "");
  q.append_ref(Bytes());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pieces(), 0u);
  EXPECT_TRUE(iovecs(q).empty());
}

TEST(OutputQueue, BuildIovecsFillsAtMostMax) {
  CountedBuffer p1("1"), p2("2");
  OutputQueue q;
  copy(q, "a");
  q.append_ref(p1.view());
  q.append_ref(p2.view());
  EXPECT_EQ(iovecs(q, 2), Pieces({"a", "1"}));
  EXPECT_EQ(iovecs(q, 3), Pieces({"a", "1", "2"}));
  EXPECT_EQ(q.pieces(), 3u);
}

TEST(OutputQueue, PartialSendInsideAPieceKeepsItsUnsentTail) {
  CountedBuffer payload("world");
  OutputQueue q;
  copy(q, "hello ");
  q.append_ref(payload.view());
  q.consume(3);
  EXPECT_EQ(q.bytes(), 8u);
  EXPECT_EQ(iovecs(q), Pieces({"lo ", "world"}));
  q.consume(5);  // two bytes into the payload
  EXPECT_EQ(iovecs(q), Pieces({"rld"}));
  iovec iov[1];
  ASSERT_EQ(q.build_iovecs(iov, 1), 1u);
  EXPECT_EQ(iov[0].iov_base, payload.storage.data() + 2) << "still the payload, not a copy";
  EXPECT_EQ(payload.released, 0);
}

TEST(OutputQueue, SendEndingOnAPieceBoundaryReleasesThatPayloadAtOnce) {
  CountedBuffer sent("first"), queued("second");
  OutputQueue q;
  q.append_ref(sent.view());
  q.append_ref(queued.view());
  q.consume(5);
  EXPECT_EQ(sent.released, 1);  // not held until the whole queue drains
  EXPECT_EQ(queued.released, 0);
  EXPECT_EQ(q.pieces(), 1u);
  EXPECT_EQ(iovecs(q), Pieces({"second"}));
}

TEST(OutputQueue, SendingEverythingEmptiesTheQueueAndReleasesEveryPayload) {
  CountedBuffer payload("xyz");
  OutputQueue q;
  copy(q, "ab");
  q.append_ref(payload.view());
  q.consume(5);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pieces(), 0u);
  EXPECT_EQ(payload.released, 1);
  // A drained queue is usable again from scratch.
  copy(q, "again");
  EXPECT_EQ(iovecs(q), Pieces({"again"}));
}

TEST(OutputQueue, CopyAppendedAfterAPartialSendJoinsTheUnsentTail) {
  OutputQueue q;
  copy(q, "abcd");
  q.consume(2);
  copy(q, "ef");
  EXPECT_EQ(q.pieces(), 1u);
  EXPECT_EQ(iovecs(q), Pieces({"cdef"}));
  EXPECT_EQ(q.bytes(), 4u);
}

TEST(OutputQueue, CopyToGivesTheUnsentBytesContiguously) {
  CountedBuffer payload("PAY");
  OutputQueue q;
  copy(q, "hdr");
  q.append_ref(payload.view());
  copy(q, "tr");
  q.consume(1);
  std::string out = "x";
  q.copy_to(out);
  EXPECT_EQ(out, "xdrPAYtr");
  EXPECT_EQ(q.bytes(), 7u);  // copying out sends nothing
}

TEST(OutputQueue, ClearDropsEverythingQueued) {
  CountedBuffer payload("p");
  OutputQueue q;
  copy(q, "a");
  q.append_ref(payload.view());
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pieces(), 0u);
  EXPECT_EQ(payload.released, 1);
}

}  // namespace
}  // namespace uringrpc::transport
