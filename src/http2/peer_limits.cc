// The time-dependent peer rules of peer_limits.h: the reset budget's refill, ping
// strikes and the keepalive clock.
#include "http2/peer_limits.h"

#include <algorithm>

namespace uringrpc::http2 {

Verdict ResetBudget::charge(uint64_t now_ms) {
  if (burst_ == 0) return Verdict::ok();
  // per_second tokens a second are per_second thousandths a millisecond.
  uint64_t elapsed = now_ms > refilled_ms_ ? now_ms - refilled_ms_ : 0;
  milli_tokens_ = std::min<uint64_t>(uint64_t{burst_} * 1000, milli_tokens_ + elapsed * per_second_);
  refilled_ms_ = now_ms;
  if (milli_tokens_ < 1000) return Verdict::goaway(kEnhanceYourCalm, "too_many_resets");
  milli_tokens_ -= 1000;
  return Verdict::ok();
}

Verdict PingStrikes::on_ping(uint64_t now_ms, bool streams_open) {
  if (max_strikes_ == 0) return Verdict::ok();
  // With no call open a client has far less reason to ping (gRPC core's 2 h rule).
  uint64_t min_interval = streams_open ? min_interval_ms_ : min_interval_idle_ms_;
  bool strike = have_last_ && now_ms - last_ms_ < min_interval;
  have_last_ = true;
  last_ms_ = now_ms;
  if (strike && ++strikes_ > max_strikes_) return Verdict::goaway(kEnhanceYourCalm, "too_many_pings");
  return Verdict::ok();
}

Keepalive::Step Keepalive::on_timer(uint64_t now_ms) {
  if (time_ms_ == 0) return {};
  if (outstanding_) return {Step::kClose, 0};
  // The peer spoke since the timer was armed: wait for the rest of the quiet period.
  if (now_ms - last_read_ms_ < time_ms_) return {Step::kArm, last_read_ms_ + time_ms_};
  outstanding_ = true;
  return {Step::kPingAndArm, now_ms + timeout_ms_};
}

Keepalive::Step Keepalive::on_ack(uint64_t now_ms) {
  if (!outstanding_) return {};
  outstanding_ = false;
  return {Step::kArm, now_ms + time_ms_};
}

}  // namespace uringrpc::http2
