// http2::ClosedStreams driven directly: what a late DATA or HEADERS frame on a closed
// stream gets, for each way the stream ended, while remembered and after the records go.
#include "http2/closed_streams.h"

#include <gtest/gtest.h>

namespace uringrpc::http2 {
namespace {

using How = ClosedStreams::How;

// RFC 9113 5.1 says stream error; we escalate as nghttpd does (5.4 allows it).
TEST(ClosedStreams, AfterThePeersResetAFrameIsAConnectionErrorStreamClosed) {
  ClosedStreams closed;
  closed.remember(1, How::kPeerReset);
  for (bool headers : {false, true}) {
    Verdict v = closed.on_frame(1, headers, 1);
    EXPECT_EQ(v.kind, Verdict::kGoaway);
    EXPECT_EQ(v.h2_error, kStreamClosed);
  }
}

TEST(ClosedStreams, AfterThePeersEndStreamAFrameIsAConnectionErrorStreamClosed) {
  ClosedStreams closed;
  closed.remember(3, How::kPeerEnded);
  for (bool headers : {false, true}) {
    Verdict v = closed.on_frame(3, headers, 3);
    EXPECT_EQ(v.kind, Verdict::kGoaway);
    EXPECT_EQ(v.h2_error, kStreamClosed);
  }
}

TEST(ClosedStreams, AfterOurResetFramesInFlightAreIgnored) {
  ClosedStreams closed;
  closed.remember(5, How::kWeReset);
  EXPECT_TRUE(closed.on_frame(5, false, 5).fine());
  EXPECT_TRUE(closed.on_frame(5, true, 5).fine());
}

TEST(ClosedStreams, AStreamAboveTheLastOpenedIsNotJudged) {
  ClosedStreams closed;
  closed.remember(1, How::kPeerEnded);
  EXPECT_TRUE(closed.on_frame(3, true, 1).fine()) << "a HEADERS there opens a new stream";
}

TEST(ClosedStreams, HeadersOnAnIdentifierPassedOverIsAProtocolError) {
  ClosedStreams closed;
  closed.remember(1, How::kPeerEnded);
  closed.remember(5, How::kPeerEnded);
  Verdict v = closed.on_frame(3, true, 5);  // 3 was never opened
  EXPECT_EQ(v.kind, Verdict::kGoaway);
  EXPECT_EQ(v.h2_error, kProtocolError);
  EXPECT_TRUE(closed.on_frame(3, false, 5).fine()) << "DATA there is nghttp2's to judge";
}

TEST(ClosedStreams, TheFifthRecordMovesToTheRingAndTheSixtyFifthPushesOutTheFirst) {
  ClosedStreams closed;
  for (int32_t id = 1; id <= 2 * 4 - 1; id += 2) closed.remember(id, How::kPeerEnded);
  EXPECT_EQ(closed.capacity(), ClosedStreams::kInline);
  closed.remember(9, How::kPeerEnded);
  EXPECT_EQ(closed.capacity(), ClosedStreams::kRing);
  EXPECT_EQ(closed.on_frame(1, false, 9).kind, Verdict::kGoaway) << "inline records moved along";
  for (int32_t id = 11; id <= 2 * 64 - 1; id += 2) closed.remember(id, How::kPeerEnded);
  EXPECT_EQ(closed.on_frame(1, false, 127).kind, Verdict::kGoaway) << "64 remembered: stream 1 is the 64th";
  closed.remember(129, How::kPeerEnded);
  EXPECT_TRUE(closed.on_frame(1, false, 129).fine()) << "the 65th record replaced stream 1's";
  EXPECT_TRUE(closed.on_frame(1, true, 129).fine()) << "older than every record: benefit of the doubt";
  EXPECT_EQ(closed.on_frame(3, false, 129).kind, Verdict::kGoaway);
}

TEST(ClosedStreams, AfterForgettingLateFramesAreIgnoredButPassedIdentifiersStayClosed) {
  ClosedStreams closed;
  closed.remember(1, How::kPeerEnded);
  closed.remember(3, How::kPeerReset);
  closed.forget_all(5);
  EXPECT_TRUE(closed.on_frame(1, false, 5).fine());
  EXPECT_TRUE(closed.on_frame(3, true, 5).fine());
  closed.remember(9, How::kPeerEnded);
  EXPECT_EQ(closed.on_frame(7, true, 9).kind, Verdict::kGoaway) << "7 was passed over after the trim";
}

}  // namespace
}  // namespace uringrpc::http2
