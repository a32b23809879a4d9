// The rules an HTTP/2 peer can break on one connection, beyond what nghttp2 checks itself.
// Each is a small state machine that owns one limit: fed an event and the time, it answers
// with a Verdict. No nghttp2 and no I/O here: http2::Session routes frames to them and
// carries out what they answer, and tests/unit/peer_limits_test.cc walks each across its
// exact boundary. A peer over a limit gets GOAWAY ENHANCE_YOUR_CALM with a debug text
// naming the limit, as gRPC core sends it (gRPC clients read "too_many_pings").
#pragma once

#include <cstdint>

namespace uringrpc::http2 {

// RFC 9113 section 7 error codes the rules answer with.
enum H2Error : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kStreamClosed = 0x5,
  kRefusedStream = 0x7,
  kEnhanceYourCalm = 0xb,
};

constexpr uint32_t clamp32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v); }

struct Verdict {
  enum Kind : uint8_t {
    kContinue,     // the frame is fine
    kResetStream,  // a stream error: RST_STREAM h2_error on the frame's stream
    kGoaway,       // a connection error: GOAWAY h2_error with debug, nothing after it is read
  };
  Kind kind = kContinue;
  uint32_t h2_error = kNoError;
  const char* debug = "";

  static constexpr Verdict ok() { return {}; }
  static constexpr Verdict reset(uint32_t code) { return {kResetStream, code, ""}; }
  static constexpr Verdict goaway(uint32_t code, const char* why) { return {kGoaway, code, why}; }
  bool fine() const { return kind == kContinue; }
};

// SETTINGS_MAX_CONCURRENT_STREAMS as advertised: every stream the peer opens counts until
// it closes, whatever answer it gets (a gRPC call, a 405 held up by a window at 0, a
// reset not yet sent). The one past the limit is refused alone (RFC 9113 5.1.2).
class StreamCount {
 public:
  explicit StreamCount(uint32_t limit) : limit_(limit) {}
  Verdict open() {
    if (open_ >= limit_) return Verdict::reset(kRefusedStream);
    ++open_;
    return Verdict::ok();
  }
  void close() { --open_; }
  uint32_t open_streams() const { return open_; }

 private:
  uint32_t limit_;
  uint32_t open_ = 0;
};

// A reset budget (Rapid Reset, MadeYouReset): `burst` resets, refilled at `per_second`.
// The reset that finds it empty is not sent: GOAWAY too_many_resets instead. Kept in
// thousandths of a token so the boundary is exact (burst 1000: the 1,000th reset passes,
// the 1,001st does not). burst 0 turns the rule off.
class ResetBudget {
 public:
  ResetBudget(uint32_t burst, uint32_t per_second, uint64_t now_ms)
      : burst_(burst), per_second_(per_second), milli_tokens_(uint64_t{burst} * 1000), refilled_ms_(now_ms) {}
  Verdict charge(uint64_t now_ms);
  uint32_t tokens_left() const { return static_cast<uint32_t>(milli_tokens_ / 1000); }

 private:
  uint32_t burst_;
  uint32_t per_second_;
  uint64_t milli_tokens_;
  uint64_t refilled_ms_;
};

// Frames without payload in a row (DATA, HEADERS, CONTINUATION): each costs us work and
// carries nothing. One that ends a stream or carries payload ends the run. max 0: off.
class EmptyFrameRun {
 public:
  explicit EmptyFrameRun(uint32_t max) : max_(max) {}
  Verdict on_frame(bool empty, bool end_stream) {
    if (!empty || end_stream) {
      run_ = 0;
      return Verdict::ok();
    }
    if (max_ > 0 && ++run_ > max_) return Verdict::goaway(kEnhanceYourCalm, "too_many_empty_frames");
    return Verdict::ok();
  }

 private:
  uint32_t max_;
  uint32_t run_ = 0;
};

// gRPC core's ping policy: a ping sooner than the minimum interval after the previous one
// is a strike (the interval is longer while no stream is open); more than max_strikes
// strikes end the connection. A response we send forgives them. max_strikes 0: off.
class PingStrikes {
 public:
  // Intervals in milliseconds up to 2^32-1 (49 days): more is clamped.
  PingStrikes(uint32_t max_strikes, uint64_t min_interval_ms, uint64_t min_interval_idle_ms)
      : max_strikes_(max_strikes), min_interval_ms_(clamp32(min_interval_ms)),
        min_interval_idle_ms_(clamp32(min_interval_idle_ms)) {}
  Verdict on_ping(uint64_t now_ms, bool streams_open);
  void forgive() {
    strikes_ = 0;
    have_last_ = false;
  }

 private:
  // Every idle connection carries one of each rule: kept small (32-bit intervals).
  uint64_t last_ms_ = 0;
  uint32_t max_strikes_;
  uint32_t strikes_ = 0;
  uint32_t min_interval_ms_;
  uint32_t min_interval_idle_ms_;
  bool have_last_ = false;  // a ping arrived since the last forgiveness
};

// Keepalive for peers that went silent: after `time_ms` without a byte from the peer we
// ping; without the ACK within `timeout_ms` the connection is closed (no GOAWAY: the peer
// is presumed gone). The session arms one timer at the time each step names.
class Keepalive {
 public:
  struct Step {
    enum What : uint8_t { kNothing, kArm, kPingAndArm, kClose } what = kNothing;
    uint64_t at_ms = 0;  // kArm, kPingAndArm: when to call on_timer next
  };
  // Times in milliseconds up to 2^32-1 (49 days): more is clamped.
  Keepalive(uint64_t time_ms, uint64_t timeout_ms, uint64_t now_ms)
      : last_read_ms_(now_ms), time_ms_(clamp32(time_ms)), timeout_ms_(clamp32(timeout_ms)) {}
  Step start() const { return time_ms_ > 0 ? Step{Step::kArm, last_read_ms_ + time_ms_} : Step{}; }
  void on_read(uint64_t now_ms) { last_read_ms_ = now_ms; }
  Step on_timer(uint64_t now_ms);
  Step on_ack(uint64_t now_ms);
  uint64_t timeout_ms() const { return timeout_ms_; }

 private:
  uint64_t last_read_ms_;
  uint32_t time_ms_;
  uint32_t timeout_ms_;
  bool outstanding_ = false;  // our ping awaits its ACK
};

}  // namespace uringrpc::http2
