// TimerWheel implementation. Called only from its shard's thread: the loop (advance,
// ms_until_next) and whatever arms timers on that shard (calls, connections, sleep_for).
//
// Placement invariant, relative to now_ms_ (the wheel's time): a timer sits in level L when
// the highest bit in which its deadline differs from now_ms_ is in [6L, 6L+6), at slot =
// deadline's L-th 6-bit digit. So every level-L timer lies in now's current 64^(L+1) ms block
// and after every level-(L-1) timer, and a level-L slot's digit is ahead of now's digit. The
// earliest thing to do is therefore the lowest set bit of the lowest non-empty level: either
// the exact deadline (level 0) or the moment a higher slot must be cascaded down.

#include "loop/timer_wheel.h"

#include <time.h>

#include <bit>
#include <cassert>
#include <limits>

namespace uringrpc::loop {

using detail::TimerLink;

namespace {

bool list_empty(const TimerLink& head) { return head.next_ == &head; }

void push_back(TimerLink& head, TimerLink& n) {
  n.prev_ = head.prev_;
  n.next_ = &head;
  head.prev_->next_ = &n;
  head.prev_ = &n;
}

void unlink(TimerLink& n) {
  n.prev_->next_ = n.next_;
  n.next_->prev_ = n.prev_;
  n.prev_ = &n;
  n.next_ = &n;
}

// Moves every node of `from` to the tail of `to`, leaving `from` empty.
void splice_back(TimerLink& from, TimerLink& to) {
  if (list_empty(from)) return;
  TimerLink* first = from.next_;
  TimerLink* last = from.prev_;
  first->prev_ = to.prev_;
  to.prev_->next_ = first;
  last->next_ = &to;
  to.prev_ = last;
  from.prev_ = &from;
  from.next_ = &from;
}

template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(f) {}
  ~ScopeExit() { f_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F f_;
};

}  // namespace

Timer::~Timer() { cancel(); }

void Timer::cancel() {
  if (wheel_ != nullptr) wheel_->cancel(*this);
}

TimerWheel::TimerWheel(uint64_t now_ms) : now_ms_(now_ms) {}

TimerWheel::~TimerWheel() {
  assert(!advancing_ && "TimerWheel destroyed from inside one of its callbacks");
  for (TimerLink& slot : slots_) disarm_all(slot);
  disarm_all(overflow_);
  disarm_all(overdue_);
}

void TimerWheel::disarm_all(TimerLink& list) {
  while (!list_empty(list)) {
    Timer& t = as_timer(*list.next_);
    unlink(t);
    t.wheel_ = nullptr;
  }
}

void TimerWheel::arm(Timer& t, uint64_t deadline_ms) {
  // Also covers a timer armed on another wheel, though crossing shards is a caller bug.
  if (t.wheel_ != nullptr) t.wheel_->cancel(t);
  t.wheel_ = this;
  t.deadline_ms_ = deadline_ms;
  ++size_;
  if (deadline_ms <= now_ms_) {
    // Not slot now's own level-0 digit: advance() would find it again at once, and a
    // callback re-arming itself for "now" would spin inside one advance().
    t.bucket_ = kOverdueBucket;
    push_back(overdue_, t);
    return;
  }
  place(t);
}

void TimerWheel::cancel(Timer& t) {
  if (t.wheel_ != this) {
    if (t.wheel_ != nullptr) t.wheel_->cancel(t);
    return;
  }
  detach(t);
}

void TimerWheel::detach(Timer& t) {
  unlink(t);
  // bucket_ may be stale (the timer may be in advance()'s firing list by now), but clearing
  // the bit only when that slot really is empty keeps the bitmap exact either way.
  if (t.bucket_ < kSlotBuckets && list_empty(slots_[t.bucket_])) {
    occupied_[t.bucket_ / kSlots] &= ~(uint64_t{1} << (t.bucket_ % kSlots));
  }
  t.wheel_ = nullptr;
  --size_;
}

// Precondition: t.deadline_ms_ >= now_ms_ (equal only while cascading inside advance()).
void TimerWheel::place(Timer& t) {
  assert(t.deadline_ms_ >= now_ms_);
  const uint64_t diff = t.deadline_ms_ ^ now_ms_;
  if ((diff >> kRangeBits) != 0) {
    t.bucket_ = kOverflowBucket;
    push_back(overflow_, t);
    return;
  }
  const auto level = static_cast<unsigned>(diff < kSlots ? 0 : (std::bit_width(diff) - 1) / kSlotBits);
  const auto slot = static_cast<unsigned>((t.deadline_ms_ >> (level * kSlotBits)) & (kSlots - 1));
  t.bucket_ = static_cast<uint16_t>(level * kSlots + slot);
  push_back(slots_[t.bucket_], t);
  occupied_[level] |= uint64_t{1} << slot;
}

void TimerWheel::take_bucket(uint16_t bucket, TimerLink& into) {
  if (bucket == kOverflowBucket) {
    splice_back(overflow_, into);
    return;
  }
  splice_back(slots_[bucket], into);
  occupied_[bucket / kSlots] &= ~(uint64_t{1} << (bucket % kSlots));
}

bool TimerWheel::next_expiry(Expiry& e) const {
  for (unsigned level = 0; level < kLevels; ++level) {
    const uint64_t bits = occupied_[level];
    if (bits == 0) continue;
    const unsigned slot = static_cast<unsigned>(std::countr_zero(bits));
    const unsigned shift = level * kSlotBits;
    const uint64_t block_mask = (uint64_t{1} << (shift + kSlotBits)) - 1;
    e.at_ms = (now_ms_ & ~block_mask) | (uint64_t{slot} << shift);
    e.bucket = static_cast<uint16_t>(level * kSlots + slot);
    return true;
  }
  if (!list_empty(overflow_)) {
    // Start of the next 2^42 ms block. Cannot wrap: if now is in the last block, no
    // deadline can be beyond it, so the overflow list is empty.
    e.at_ms = (now_ms_ | (kRangeMs - 1)) + 1;
    e.bucket = kOverflowBucket;
    return true;
  }
  return false;
}

size_t TimerWheel::fire_all(TimerLink& firing) {
  size_t fired = 0;
  while (!list_empty(firing)) {
    Timer& t = as_timer(*firing.next_);
    unlink(t);
    t.wheel_ = nullptr;
    --size_;
    ++fired;
    const Timer::Callback cb = t.cb_;
    void* const arg = t.arg_;
    // From here on t may be re-armed or destroyed, and so may any timer still in `firing`
    // (it unlinks itself), which is why we pop one at a time from a local list.
    if (cb != nullptr) cb(arg);
  }
  return fired;
}

void TimerWheel::cascade(TimerLink& pending) {
  while (!list_empty(pending)) {
    Timer& t = as_timer(*pending.next_);
    unlink(t);
    place(t);
  }
}

size_t TimerWheel::advance(uint64_t now_ms) {
  assert(!advancing_ && "advance() called from a timer callback");
  if (advancing_) return 0;
  advancing_ = true;
  TimerLink firing;
  // Only matters if a callback throws (the I/O path should not): the timers that were due
  // alongside it stay armed and fire at the next advance().
  ScopeExit restore([&] {
    for (TimerLink* n = firing.next_; n != &firing; n = n->next_) {
      as_timer(*n).bucket_ = kOverdueBucket;
    }
    splice_back(firing, overdue_);
    advancing_ = false;
  });

  // Overdue timers first: their deadlines are <= now_ms_, before anything in a slot. Taking
  // the whole list up front means ones re-armed overdue by these callbacks wait a turn.
  splice_back(overdue_, firing);
  size_t fired = fire_all(firing);

  Expiry e;
  while (next_expiry(e) && e.at_ms <= now_ms) {
    if (e.bucket == kOverflowBucket) {
      // Only overflow timers are armed (every level is empty), so time may jump straight
      // to the 2^42 ms block of the earliest of them instead of crossing blocks one by one.
      uint64_t earliest = std::numeric_limits<uint64_t>::max();
      for (TimerLink* n = overflow_.next_; n != &overflow_; n = n->next_) {
        const uint64_t d = as_timer(*n).deadline_ms_;
        if (d < earliest) earliest = d;
      }
      const uint64_t block_start = earliest & ~(kRangeMs - 1);
      now_ms_ = block_start < now_ms ? block_start : now_ms;
      assert(now_ms_ >= e.at_ms);
    } else {
      now_ms_ = e.at_ms;
    }
    take_bucket(e.bucket, firing);
    if (e.bucket < kSlots) {
      fired += fire_all(firing);  // a level-0 slot holds exactly the timers due at e.at_ms
    } else {
      cascade(firing);  // every timer lands in a lower level (or fires in a later round)
    }
  }
  if (now_ms > now_ms_) now_ms_ = now_ms;
  return fired;
}

int64_t TimerWheel::ms_until_next(uint64_t now_ms) const {
  if (size_ == 0) return -1;
  if (!list_empty(overdue_)) return 0;
  Expiry e;
  // Armed but in no slot: the rest of a firing list, asked from inside a callback.
  if (!next_expiry(e)) return 0;
  if (e.at_ms <= now_ms) return 0;
  const uint64_t wait = e.at_ms - now_ms;
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  return static_cast<int64_t>(wait < kMax ? wait : kMax);
}

uint64_t TimerWheel::monotonic_now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

}  // namespace uringrpc::loop
