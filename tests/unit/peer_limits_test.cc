// The peer rules of http2/peer_limits.h driven directly, without nghttp2 or a session:
// each walked across its exact boundary with the time the test says.
#include "http2/peer_limits.h"

#include <gtest/gtest.h>

namespace uringrpc::http2 {
namespace {

TEST(StreamCount, TheHundredthStreamIsAdmittedAndTheHundredAndFirstRefused) {
  StreamCount count(100);
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(count.open().fine()) << "stream " << i;
  Verdict v = count.open();
  EXPECT_EQ(v.kind, Verdict::kResetStream);
  EXPECT_EQ(v.h2_error, kRefusedStream);
  EXPECT_EQ(count.open_streams(), 100u) << "a refused stream does not count";
}

TEST(StreamCount, AClosedStreamMakesRoomForExactlyOneMore) {
  StreamCount count(2);
  ASSERT_TRUE(count.open().fine());
  ASSERT_TRUE(count.open().fine());
  count.close();
  EXPECT_TRUE(count.open().fine());
  EXPECT_FALSE(count.open().fine());
}

TEST(ResetBudget, TheThousandthResetPassesAndTheThousandAndFirstIsAGoaway) {
  ResetBudget budget(1000, 33, 0);
  for (int i = 1; i <= 1000; ++i) ASSERT_TRUE(budget.charge(0).fine()) << "reset " << i;
  Verdict v = budget.charge(0);
  EXPECT_EQ(v.kind, Verdict::kGoaway);
  EXPECT_EQ(v.h2_error, kEnhanceYourCalm);
  EXPECT_STREQ(v.debug, "too_many_resets");
}

TEST(ResetBudget, RefillsOneTokenPerThirtyThreeOfASecondToTheMillisecond) {
  ResetBudget budget(1000, 33, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(budget.charge(0).fine());
  // 33 tokens a second: one token takes 1000/33 = 30.3 ms.
  EXPECT_FALSE(budget.charge(30).fine()) << "30 ms refill 0.99 of a token";
  EXPECT_TRUE(budget.charge(31).fine()) << "31 ms refill 1.023";
  EXPECT_FALSE(budget.charge(31).fine());
}

TEST(ResetBudget, RefillStopsAtTheBurst) {
  ResetBudget budget(5, 1000, 0);
  EXPECT_TRUE(budget.charge(0).fine());
  // An hour idle refills to 5, not to 3,600,000.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(budget.charge(3'600'000).fine());
  EXPECT_FALSE(budget.charge(3'600'000).fine());
}

TEST(ResetBudget, ABurstOfZeroTurnsTheRuleOff) {
  ResetBudget budget(0, 0, 0);
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(budget.charge(0).fine());
}

TEST(ResetBudget, AClockThatSeemsToGoBackRefillsNothing) {
  ResetBudget budget(1, 1000, 100);
  ASSERT_TRUE(budget.charge(100).fine());
  EXPECT_FALSE(budget.charge(50).fine());
}

TEST(EmptyFrameRun, TheTenthEmptyFrameInARowPassesAndTheEleventhIsAGoaway) {
  EmptyFrameRun run(10);
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(run.on_frame(true, false).fine()) << "frame " << i;
  Verdict v = run.on_frame(true, false);
  EXPECT_EQ(v.kind, Verdict::kGoaway);
  EXPECT_STREQ(v.debug, "too_many_empty_frames");
}

TEST(EmptyFrameRun, PayloadOrEndStreamEndsTheRun) {
  EmptyFrameRun run(2);
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(run.on_frame(true, false).fine());
    ASSERT_TRUE(run.on_frame(true, false).fine());
    ASSERT_TRUE(run.on_frame(round % 2 == 0, round % 2 == 0).fine());  // empty with END_STREAM, or payload
  }
  ASSERT_TRUE(run.on_frame(true, false).fine());
  ASSERT_TRUE(run.on_frame(true, false).fine());
  EXPECT_FALSE(run.on_frame(true, false).fine());
}

TEST(PingStrikes, TheSecondStrikePassesAndTheThirdIsAGoawayTooManyPings) {
  PingStrikes pings(2, 1000, 5000);
  ASSERT_TRUE(pings.on_ping(0, true).fine()) << "the first ping is never a strike";
  ASSERT_TRUE(pings.on_ping(999, true).fine()) << "strike 1";
  ASSERT_TRUE(pings.on_ping(1998, true).fine()) << "strike 2";
  Verdict v = pings.on_ping(2997, true);
  EXPECT_EQ(v.kind, Verdict::kGoaway);
  EXPECT_EQ(v.h2_error, kEnhanceYourCalm);
  EXPECT_STREQ(v.debug, "too_many_pings");
}

TEST(PingStrikes, APingExactlyTheIntervalAfterTheLastIsNoStrike) {
  PingStrikes pings(1, 1000, 1000);
  for (uint64_t t = 0; t <= 100000; t += 1000) ASSERT_TRUE(pings.on_ping(t, true).fine()) << t;
}

TEST(PingStrikes, WithoutOpenStreamsTheLongerIntervalApplies) {
  PingStrikes pings(1, 1000, 60000);
  ASSERT_TRUE(pings.on_ping(0, false).fine());
  ASSERT_TRUE(pings.on_ping(30000, false).fine()) << "strike 1: 30 s < 60 s while idle";
  EXPECT_FALSE(pings.on_ping(60000, false).fine());
  PingStrikes busy(1, 1000, 60000);
  ASSERT_TRUE(busy.on_ping(0, true).fine());
  ASSERT_TRUE(busy.on_ping(30000, true).fine());
  EXPECT_TRUE(busy.on_ping(60000, true).fine()) << "with a call open 30 s apart is fine";
}

TEST(PingStrikes, ForgivenessClearsStrikesAndTheLastPing) {
  PingStrikes pings(1, 1000, 1000);
  ASSERT_TRUE(pings.on_ping(0, true).fine());
  ASSERT_TRUE(pings.on_ping(1, true).fine());  // strike 1 of 1
  pings.forgive();
  ASSERT_TRUE(pings.on_ping(2, true).fine()) << "first ping after forgiveness";
  ASSERT_TRUE(pings.on_ping(3, true).fine()) << "strike 1 again";
  EXPECT_FALSE(pings.on_ping(4, true).fine());
}

TEST(PingStrikes, NoStrikesAllowedTurnsTheRuleOff) {
  PingStrikes pings(0, 1000, 1000);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(pings.on_ping(0, true).fine());
}

TEST(Keepalive, PingsAfterTheQuietTimeAndClosesWithoutAnAckWithinTheTimeout) {
  Keepalive k(1000, 100, 0);
  Keepalive::Step s = k.start();
  ASSERT_EQ(s.what, Keepalive::Step::kArm);
  EXPECT_EQ(s.at_ms, 1000u);
  s = k.on_timer(1000);
  ASSERT_EQ(s.what, Keepalive::Step::kPingAndArm);
  EXPECT_EQ(s.at_ms, 1100u);
  EXPECT_EQ(k.on_timer(1100).what, Keepalive::Step::kClose);
}

TEST(Keepalive, ReadingPushesThePingBackAndAnAckRearmsTheQuietTime) {
  Keepalive k(1000, 100, 0);
  k.on_read(600);
  Keepalive::Step s = k.on_timer(1000);
  ASSERT_EQ(s.what, Keepalive::Step::kArm);
  EXPECT_EQ(s.at_ms, 1600u) << "the peer spoke 400 ms ago";
  ASSERT_EQ(k.on_timer(1600).what, Keepalive::Step::kPingAndArm);
  s = k.on_ack(1650);
  ASSERT_EQ(s.what, Keepalive::Step::kArm);
  EXPECT_EQ(s.at_ms, 2650u);
  EXPECT_EQ(k.on_ack(1700).what, Keepalive::Step::kNothing) << "an ACK nobody waits for";
}

TEST(Keepalive, ZeroTimeTurnsItOff) {
  Keepalive k(0, 100, 0);
  EXPECT_EQ(k.start().what, Keepalive::Step::kNothing);
  EXPECT_EQ(k.on_timer(1'000'000).what, Keepalive::Step::kNothing);
}

}  // namespace
}  // namespace uringrpc::http2
