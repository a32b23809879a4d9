// TimerWheel: the per-shard hierarchical timer wheel (millisecond ticks, O(1) arm and cancel
// of intrusive Timers, no allocation). The shard loop arms RPC deadlines, GOAWAY grace periods,
// handshake and idle timeouts and sleep_for() awaiters here; each loop turn it calls
// advance(now) and sizes its single io_uring timeout with ms_until_next(now).
#pragma once

#include <cstddef>
#include <cstdint>

namespace uringrpc::loop {

class TimerWheel;

namespace detail {
// A circular doubly linked node. List heads are plain nodes, so a timer can unlink itself
// from whatever list holds it (a slot, the overdue list, advance()'s local firing list)
// without knowing which one.
struct TimerLink {
  TimerLink() = default;
  TimerLink(const TimerLink&) = delete;
  TimerLink& operator=(const TimerLink&) = delete;
  TimerLink* prev_ = this;
  TimerLink* next_ = this;
};
}  // namespace detail

// Intrusive timer node, embedded in whatever it times (a call, a connection, an awaiter).
// Destroying an armed timer cancels it, so an owner may die at any time, even inside
// another timer's callback during advance().
class Timer : private detail::TimerLink {
 public:
  using Callback = void (*)(void* arg);

  Timer() = default;
  Timer(Callback cb, void* arg) : cb_(cb), arg_(arg) {}
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Allowed while armed: the callback in place when the timer fires is the one called.
  void set_callback(Callback cb, void* arg) {
    cb_ = cb;
    arg_ = arg;
  }
  bool armed() const { return wheel_ != nullptr; }
  uint64_t deadline_ms() const { return deadline_ms_; }
  // Cancels from whichever wheel holds the timer; no-op if not armed.
  void cancel();

 private:
  friend class TimerWheel;

  TimerWheel* wheel_ = nullptr;
  Callback cb_ = nullptr;
  void* arg_ = nullptr;
  uint64_t deadline_ms_ = 0;
  // Which slot list the timer was put in; only used to keep the occupancy bitmap exact.
  uint16_t bucket_ = 0;
};

class TimerWheel {
 public:
  static constexpr unsigned kSlotBits = 6;
  static constexpr unsigned kSlots = 1u << kSlotBits;
  static constexpr unsigned kLevels = 7;
  // Deadlines less than about kRangeMs (2^42 ms, ~139 years) ahead sit in a level directly;
  // later ones wait in an overflow list that acts as one more slot after the last level.
  static constexpr unsigned kRangeBits = kSlotBits * kLevels;
  static constexpr uint64_t kRangeMs = uint64_t{1} << kRangeBits;

  explicit TimerWheel(uint64_t now_ms);
  // Disarms every timer still armed, so their owners may outlive the wheel.
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // O(1). Re-arming an armed timer moves it. A deadline <= now_ms() fires at the next
  // advance() (never inside the advance() that is running, so a callback that re-arms
  // itself "now" cannot spin).
  void arm(Timer& t, uint64_t deadline_ms);
  // O(1); no-op if not armed.
  void cancel(Timer& t);
  // Fires, in deadline order, every timer with deadline <= now_ms and returns how many
  // fired. Overdue timers (armed at or before the wheel's time) fire first, in arm order.
  // While a callback runs, now_ms() is the deadline being fired. Callbacks may arm, cancel
  // and destroy any timer, but must not call advance() or destroy the wheel.
  size_t advance(uint64_t now_ms);
  // Milliseconds from now_ms until advance() must run again, or -1 if nothing is armed.
  // Never later than the next deadline; may be earlier (a cascade point). O(kLevels).
  int64_t ms_until_next(uint64_t now_ms) const;

  size_t size() const { return size_; }
  // The time of the last advance() (never decreases).
  uint64_t now_ms() const { return now_ms_; }
  // CLOCK_MONOTONIC, rounded down, so a timer compared against it never fires early.
  static uint64_t monotonic_now_ms();

 private:
  static constexpr uint16_t kSlotBuckets = kLevels * kSlots;
  static constexpr uint16_t kOverflowBucket = kSlotBuckets;
  static constexpr uint16_t kOverdueBucket = kSlotBuckets + 1;

  struct Expiry {
    uint64_t at_ms;
    uint16_t bucket;
  };

  static Timer& as_timer(detail::TimerLink& link) { return static_cast<Timer&>(link); }
  void place(Timer& t);
  void detach(Timer& t);
  void take_bucket(uint16_t bucket, detail::TimerLink& into);
  bool next_expiry(Expiry& e) const;
  size_t fire_all(detail::TimerLink& firing);
  void cascade(detail::TimerLink& pending);
  void disarm_all(detail::TimerLink& list);

  detail::TimerLink slots_[kSlotBuckets];
  detail::TimerLink overflow_;
  detail::TimerLink overdue_;
  // Bit s of occupied_[level] <=> slots_[level * kSlots + s] is non-empty.
  uint64_t occupied_[kLevels] = {};
  uint64_t now_ms_;
  size_t size_ = 0;
  bool advancing_ = false;
};

}  // namespace uringrpc::loop
