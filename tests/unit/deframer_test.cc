// Unit tests for the gRPC message deframer: chunking at every boundary, the zero-copy
// rule, size and flag errors, and how much memory a partial message may hold.
#include "rpc/deframer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace uringrpc::rpc {
namespace {

// Stands in for a shard's receive buffer: counts references so tests can see who shares
// the storage and when it is handed back.
class TestBuffer final : public BufferOwner {
 public:
  explicit TestBuffer(std::string data, bool* released = nullptr)
      : data_(std::move(data)), released_(released) {}
  Bytes bytes() { return Bytes(this, reinterpret_cast<const uint8_t*>(data_.data()), data_.size()); }

 protected:
  void release() noexcept override {
    if (released_) *released_ = true;
    delete this;
  }

 private:
  std::string data_;
  bool* released_;
};

Bytes chunk_of(std::string_view s) { return (new TestBuffer(std::string(s)))->bytes(); }

std::string frame(std::string_view payload, bool compressed = false) {
  uint8_t prefix[kMessagePrefixSize];
  encode_message_prefix(prefix, static_cast<uint32_t>(payload.size()), compressed);
  return std::string(reinterpret_cast<const char*>(prefix), kMessagePrefixSize) + std::string(payload);
}

std::string raw_prefix(uint8_t flag, uint32_t length) {
  uint8_t prefix[kMessagePrefixSize];
  encode_message_prefix(prefix, length);
  prefix[0] = flag;
  return std::string(reinterpret_cast<const char*>(prefix), kMessagePrefixSize);
}

struct Received {
  std::string payload;
  bool compressed;
  bool operator==(const Received&) const = default;
};

// Feeds `pieces` as separate chunks and collects what comes out.
std::vector<Received> feed_all(Deframer& d, const std::vector<std::string>& pieces,
                               Deframer::Error* last = nullptr) {
  std::vector<Received> out;
  Deframer::Error e = Deframer::Error::kNone;
  for (const auto& p : pieces) {
    e = d.feed(chunk_of(p), [&](Bytes m, bool c) { out.push_back({m.str(), c}); });
  }
  if (last) *last = e;
  return out;
}

std::string pattern(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 8)) & 0xFF);
  return s;
}

const std::vector<Received> kMessages = {
    {"hello", false}, {"", false}, {pattern(300), true}, {"x", false}, {"", true}, {pattern(17, 3), false},
};

std::string stream_of(const std::vector<Received>& messages) {
  std::string s;
  for (const auto& m : messages) s += frame(m.payload, m.compressed);
  return s;
}

TEST(Deframer, WholeStreamInOneChunkDeliversAllMessagesInOrder) {
  Deframer d(1 << 20);
  Deframer::Error e;
  EXPECT_EQ(feed_all(d, {stream_of(kMessages)}, &e), kMessages);
  EXPECT_EQ(e, Deframer::Error::kNone);
  EXPECT_FALSE(d.mid_message());
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(Deframer, SplitIntoTwoChunksAtEveryByteBoundaryDeliversSameMessages) {
  const std::string s = stream_of(kMessages);
  for (size_t i = 0; i <= s.size(); ++i) {
    Deframer d(1 << 20);
    EXPECT_EQ(feed_all(d, {s.substr(0, i), s.substr(i)}), kMessages) << "split at " << i;
    EXPECT_FALSE(d.mid_message()) << "split at " << i;
  }
}

TEST(Deframer, SplitIntoThreeChunksAtEveryPairOfBoundariesDeliversSameMessages) {
  // Short messages keep the O(n^2) pairs cheap while covering prefix/payload mixes.
  const std::vector<Received> messages = {{"ab", false}, {"", true}, {"cdefgh", true}, {"i", false}};
  const std::string s = stream_of(messages);
  for (size_t i = 0; i <= s.size(); ++i) {
    for (size_t j = i; j <= s.size(); ++j) {
      Deframer d(64);
      EXPECT_EQ(feed_all(d, {s.substr(0, i), s.substr(i, j - i), s.substr(j)}), messages)
          << "splits at " << i << "," << j;
      EXPECT_FALSE(d.mid_message());
    }
  }
}

TEST(Deframer, OneByteChunksDeliverSameMessages) {
  const std::string s = stream_of(kMessages);
  std::vector<std::string> pieces;
  for (char c : s) pieces.emplace_back(1, c);
  Deframer d(1 << 20);
  EXPECT_EQ(feed_all(d, pieces), kMessages);
}

TEST(Deframer, MessageWhollyInsideChunkIsASliceOfTheChunkNotACopy) {
  const std::string s = frame("first") + frame("second message");
  Bytes chunk = chunk_of(s);
  Deframer d(1024);
  std::vector<Bytes> got;
  d.feed(chunk, [&](Bytes m, bool) { got.push_back(std::move(m)); });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data(), chunk.data() + kMessagePrefixSize);
  EXPECT_EQ(got[1].data(), chunk.data() + 2 * kMessagePrefixSize + 5);
  EXPECT_EQ(got[0].owner(), chunk.owner());
  EXPECT_EQ(got[1].owner(), chunk.owner());
  EXPECT_EQ(got[1].view(), "second message");
}

TEST(Deframer, PayloadWhollyInsideChunkIsSlicedEvenWhenItsPrefixWasSplit) {
  const std::string s = frame("payload");
  Deframer d(1024);
  std::vector<Bytes> got;
  d.feed(chunk_of(s.substr(0, 3)), [&](Bytes m, bool) { got.push_back(std::move(m)); });
  Bytes second = chunk_of(s.substr(3));
  d.feed(second, [&](Bytes m, bool) { got.push_back(std::move(m)); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data(), second.data() + 2);
  EXPECT_EQ(got[0].view(), "payload");
}

TEST(Deframer, SlicedMessageKeepsReceiveBufferAliveUntilReleased) {
  bool released = false;
  Bytes message;
  {
    Bytes chunk = (new TestBuffer(frame("keep me"), &released))->bytes();
    Deframer d(1024);
    d.feed(chunk, [&](Bytes m, bool) { message = std::move(m); });
  }
  EXPECT_FALSE(released);
  EXPECT_EQ(message.view(), "keep me");
  message = Bytes();
  EXPECT_TRUE(released);
}

TEST(Deframer, MessageSplitAcrossChunksIsAssembledAndReleasesTheChunks) {
  const std::string s = frame("split message");
  bool first_released = false, second_released = false;
  Deframer d(1024);
  Bytes message;
  d.feed((new TestBuffer(s.substr(0, 9), &first_released))->bytes(), [&](Bytes, bool) { FAIL(); });
  EXPECT_TRUE(first_released);  // the partial payload was copied out
  d.feed((new TestBuffer(s.substr(9), &second_released))->bytes(),
         [&](Bytes m, bool) { message = std::move(m); });
  EXPECT_TRUE(second_released);
  EXPECT_EQ(message.view(), "split message");
  EXPECT_NE(message.owner(), nullptr);
}

TEST(Deframer, ZeroLengthMessageIsDeliveredEmptyWithoutPinningTheBuffer) {
  bool released = false;
  std::vector<Bytes> got;
  Deframer d(16);
  d.feed((new TestBuffer(frame(""), &released))->bytes(), [&](Bytes m, bool) { got.push_back(std::move(m)); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].empty());
  EXPECT_EQ(got[0].owner(), nullptr);
  EXPECT_TRUE(released);
  EXPECT_FALSE(d.mid_message());
}

TEST(Deframer, ZeroMaxSizeStillAcceptsZeroLengthMessages) {
  Deframer d(0);
  Deframer::Error e;
  EXPECT_EQ(feed_all(d, {frame("") + frame("")}, &e), (std::vector<Received>{{"", false}, {"", false}}));
  EXPECT_EQ(e, Deframer::Error::kNone);
}

TEST(Deframer, CompressedFlagIsPassedThrough) {
  Deframer d(64);
  EXPECT_EQ(feed_all(d, {frame("z", true) + frame("p", false)}),
            (std::vector<Received>{{"z", true}, {"p", false}}));
}

TEST(Deframer, TooLargeIsRefusedOnThePrefixAloneBeforeAnyPayload) {
  Deframer d(100);
  int calls = 0;
  const auto e = d.feed(chunk_of(raw_prefix(0, 101)), [&](Bytes, bool) { ++calls; });
  EXPECT_EQ(e, Deframer::Error::kMessageTooLarge);
  EXPECT_EQ(d.error(), Deframer::Error::kMessageTooLarge);
  EXPECT_EQ(d.pending_message_length(), 101u);
  EXPECT_EQ(d.buffered_bytes(), 0u);
  EXPECT_EQ(d.reserved_bytes(), std::string().capacity());
  EXPECT_EQ(calls, 0);
}

TEST(Deframer, TooLargeIsRefusedWhenThePrefixArrivesOneByteAtATime) {
  const std::string prefix = raw_prefix(1, 0xFFFFFFFF);
  Deframer d(4 << 20);
  for (size_t i = 0; i + 1 < prefix.size(); ++i) {
    EXPECT_EQ(d.feed(chunk_of(prefix.substr(i, 1)), [](Bytes, bool) {}), Deframer::Error::kNone);
    EXPECT_TRUE(d.mid_message());
  }
  EXPECT_EQ(d.feed(chunk_of(prefix.substr(4)), [](Bytes, bool) {}), Deframer::Error::kMessageTooLarge);
  EXPECT_EQ(d.pending_message_length(), 0xFFFFFFFFu);
}

TEST(Deframer, MessageOfExactlyMaxSizeIsAccepted) {
  Deframer d(10);
  Deframer::Error e;
  EXPECT_EQ(feed_all(d, {frame("0123456789")}, &e), (std::vector<Received>{{"0123456789", false}}));
  EXPECT_EQ(e, Deframer::Error::kNone);
}

TEST(Deframer, FlagOtherThanZeroOrOneIsBadFlag) {
  for (uint8_t flag : {2, 3, 0x80, 0xFF}) {
    Deframer d(64);
    Deframer::Error e;
    EXPECT_TRUE(feed_all(d, {raw_prefix(flag, 1) + "x"}, &e).empty());
    EXPECT_EQ(e, Deframer::Error::kBadFlag) << int{flag};
  }
}

TEST(Deframer, MessagesBeforeAnErrorInTheSameChunkAreDelivered) {
  Deframer d(64);
  Deframer::Error e;
  EXPECT_EQ(feed_all(d, {frame("ok") + raw_prefix(7, 0) + frame("never")}, &e),
            (std::vector<Received>{{"ok", false}}));
  EXPECT_EQ(e, Deframer::Error::kBadFlag);
}

TEST(Deframer, ErrorIsStickyAndLaterInputIsIgnored) {
  Deframer d(4);
  int calls = 0;
  EXPECT_EQ(d.feed(chunk_of(raw_prefix(0, 5)), [&](Bytes, bool) { ++calls; }),
            Deframer::Error::kMessageTooLarge);
  EXPECT_EQ(d.feed(chunk_of(frame("ok")), [&](Bytes, bool) { ++calls; }), Deframer::Error::kMessageTooLarge);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(Deframer, EmptyChunkChangesNothing) {
  Deframer d(64);
  const std::string s = frame("abc");
  feed_all(d, {s.substr(0, 6)});
  EXPECT_EQ(d.buffered_bytes(), 1u);
  EXPECT_EQ(d.feed(Bytes(), [](Bytes, bool) { FAIL(); }), Deframer::Error::kNone);
  EXPECT_EQ(d.buffered_bytes(), 1u);
  EXPECT_EQ(feed_all(d, {s.substr(6)}), (std::vector<Received>{{"abc", false}}));
}

TEST(Deframer, MidMessageTracksPartialPrefixAndPartialPayload) {
  Deframer d(64);
  EXPECT_FALSE(d.mid_message());
  const std::string s = frame("abcd");
  feed_all(d, {s.substr(0, 2)});
  EXPECT_TRUE(d.mid_message());
  EXPECT_EQ(d.buffered_bytes(), 2u);
  feed_all(d, {s.substr(2, 3)});  // prefix complete, no payload yet
  EXPECT_TRUE(d.mid_message());
  EXPECT_EQ(d.pending_message_length(), 4u);
  feed_all(d, {s.substr(5, 2)});
  EXPECT_TRUE(d.mid_message());
  EXPECT_EQ(d.buffered_bytes(), 2u);
  feed_all(d, {s.substr(7)});
  EXPECT_FALSE(d.mid_message());
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(Deframer, PrefixCompleteWithZeroLengthPayloadIsNotMidMessage) {
  Deframer d(64);
  EXPECT_EQ(feed_all(d, {frame("") }).size(), 1u);
  EXPECT_FALSE(d.mid_message());
}

TEST(Deframer, ThreeMebibyteMessageIn1000BytePiecesIsAssembledExactly) {
  const size_t kSize = 3 << 20;
  const std::string payload = pattern(kSize, 9);
  const std::string s = frame(payload) + frame("tail");
  Deframer d(4 << 20);
  std::vector<Bytes> got;
  size_t max_reserved = 0;
  for (size_t off = 0; off < s.size(); off += 1000) {
    d.feed(chunk_of(s.substr(off, 1000)), [&](Bytes m, bool) { got.push_back(std::move(m)); });
    max_reserved = std::max(max_reserved, d.reserved_bytes());
    if (got.empty()) {
      EXPECT_TRUE(d.mid_message());
      EXPECT_EQ(d.buffered_bytes(), std::min(off + 1000, kMessagePrefixSize + kSize) - kMessagePrefixSize);
    }
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].size(), kSize);
  EXPECT_TRUE(got[0].view() == payload);
  EXPECT_EQ(got[1].view(), "tail");
  EXPECT_LE(max_reserved, kSize + 32);  // never more than the declared length (plus allocator slack)
  EXPECT_FALSE(d.mid_message());
}

TEST(Deframer, LargeDeclaredLengthDoesNotReserveItUpFront) {
  // A peer that declares the maximum and sends a few bytes must not cost the maximum.
  Deframer d(4 << 20);
  feed_all(d, {raw_prefix(0, 4 << 20) + "abc"});
  EXPECT_TRUE(d.mid_message());
  EXPECT_EQ(d.buffered_bytes(), 3u);
  EXPECT_LE(d.reserved_bytes(), Deframer::kEagerReserveLimit + 32);
}

TEST(Deframer, SmallSplitMessageReservesItsDeclaredLengthOnce) {
  Deframer d(1 << 20);
  feed_all(d, {raw_prefix(0, 4000) + "a"});
  const size_t reserved = d.reserved_bytes();
  EXPECT_GE(reserved, 4000u);
  feed_all(d, {std::string(3000, 'b')});
  EXPECT_EQ(d.reserved_bytes(), reserved);  // no regrowth
}

TEST(Deframer, EncodeMessagePrefixWritesFlagAndBigEndianLength) {
  uint8_t out[kMessagePrefixSize];
  encode_message_prefix(out, 0x01020304);
  EXPECT_EQ(std::memcmp(out, "\x00\x01\x02\x03\x04", 5), 0);
  encode_message_prefix(out, 0xFFFFFFFE, true);
  EXPECT_EQ(std::memcmp(out, "\x01\xFF\xFF\xFF\xFE", 5), 0);
}

TEST(Deframer, FeedAcceptsAnLvalueCallableAndCallsItOncePerMessage) {
  Deframer d(64);
  int calls = 0;
  auto on_message = [&calls](Bytes, bool) { ++calls; };
  d.feed(chunk_of(frame("a") + frame("b") + frame("c")), on_message);
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace uringrpc::rpc
