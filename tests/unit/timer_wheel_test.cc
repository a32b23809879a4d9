// Unit tests for loop::TimerWheel, the per-shard timer wheel. Everything runs on a simulated
// clock (the wheel only ever sees the numbers we pass in), so nothing here sleeps.

#include "loop/timer_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

namespace uringrpc::loop {
namespace {

constexpr uint64_t kSecond = 1000;
constexpr uint64_t kHour = 3600 * kSecond;
constexpr uint64_t kDay = 24 * kHour;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// A timer that records when and how often it fired.
struct Probe {
  explicit Probe(TimerWheel& w) : wheel(&w), timer(&Probe::on_fire, this) {}
  Probe() : timer(&Probe::on_fire, this) {}

  static void on_fire(void* arg) {
    auto* p = static_cast<Probe*>(arg);
    ++p->fired;
    p->fired_at = p->wheel != nullptr ? p->wheel->now_ms() : 0;
    if (p->log != nullptr) p->log->push_back(p->id);
    if (p->round != nullptr) p->fired_round = *p->round;
  }

  TimerWheel* wheel = nullptr;
  Timer timer;
  int id = 0;
  int fired = 0;
  uint64_t fired_at = 0;
  std::vector<int>* log = nullptr;
  const size_t* round = nullptr;  // which advance() of the test is running
  size_t fired_round = 0;
};

TEST(TimerWheel, FiresAtDeadlineAndNotOneMillisecondBefore) {
  TimerWheel wheel(1000);
  Probe p(wheel);
  wheel.arm(p.timer, 1010);
  EXPECT_TRUE(p.timer.armed());
  EXPECT_EQ(p.timer.deadline_ms(), 1010u);
  EXPECT_EQ(wheel.size(), 1u);

  EXPECT_EQ(wheel.advance(1009), 0u);
  EXPECT_EQ(p.fired, 0);
  EXPECT_EQ(wheel.advance(1010), 1u);
  EXPECT_EQ(p.fired, 1);
  EXPECT_EQ(p.fired_at, 1010u);
  EXPECT_FALSE(p.timer.armed());
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.advance(5000), 0u);
  EXPECT_EQ(p.fired, 1);
}

TEST(TimerWheel, FiresAtFirstAdvanceAfterDeadlineWhenClockJumpsPastIt) {
  TimerWheel wheel(0);
  Probe p(wheel);
  wheel.arm(p.timer, 70);
  EXPECT_EQ(wheel.advance(69), 0u);
  EXPECT_EQ(wheel.advance(500), 1u);
  EXPECT_EQ(p.fired_at, 70u);  // callbacks see the deadline being fired as the wheel's time
  EXPECT_EQ(wheel.now_ms(), 500u);
}

TEST(TimerWheel, FiresInDeadlineOrderAcrossLevels) {
  TimerWheel wheel(12345);
  const std::vector<uint64_t> offsets = {5000, 1, 64, 63, 4096, 65, 4095, 262144, 2, 7 * kHour, 3 * kDay};
  std::vector<int> log;
  std::vector<std::unique_ptr<Probe>> probes;
  for (size_t i = 0; i < offsets.size(); ++i) {
    probes.push_back(std::make_unique<Probe>(wheel));
    probes.back()->id = static_cast<int>(i);
    probes.back()->log = &log;
    wheel.arm(probes.back()->timer, 12345 + offsets[i]);
  }
  EXPECT_EQ(wheel.advance(12345 + 4 * kDay), offsets.size());
  ASSERT_EQ(log.size(), offsets.size());
  for (size_t i = 1; i < log.size(); ++i) {
    EXPECT_LT(offsets[log[i - 1]], offsets[log[i]]);
  }
  for (const auto& p : probes) EXPECT_EQ(p->fired_at, p->timer.deadline_ms());
}

TEST(TimerWheel, DeadlineAtOrBeforeNowFiresAtNextAdvanceEvenWithoutTimeMoving) {
  TimerWheel wheel(100);
  Probe at_now(wheel);
  Probe in_past(wheel);
  Probe at_zero(wheel);
  wheel.arm(at_now.timer, 100);
  wheel.arm(in_past.timer, 40);
  wheel.arm(at_zero.timer, 0);
  EXPECT_EQ(wheel.ms_until_next(100), 0);
  EXPECT_EQ(wheel.advance(100), 3u);
  EXPECT_EQ(at_now.fired + in_past.fired + at_zero.fired, 3);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, FiresExactlyAtEveryLevelBoundary) {
  for (uint64_t start : {uint64_t{0}, uint64_t{1}, uint64_t{987654321}, TimerWheel::kRangeMs - 2}) {
    for (unsigned level = 1; level < TimerWheel::kLevels; ++level) {
      const uint64_t span = uint64_t{1} << (level * TimerWheel::kSlotBits);
      const uint64_t boundary = (start / span + 1) * span;
      for (int64_t off : {-1, 0, 1}) {
        const uint64_t deadline = boundary + off;
        if (deadline <= start) continue;
        TimerWheel wheel(start);
        Probe p(wheel);
        wheel.arm(p.timer, deadline);
        EXPECT_EQ(wheel.advance(deadline - 1), 0u) << "start " << start << " deadline " << deadline;
        EXPECT_EQ(wheel.advance(deadline), 1u) << "start " << start << " deadline " << deadline;
        EXPECT_EQ(p.fired_at, deadline);
      }
    }
  }
}

TEST(TimerWheel, CancelledTimerNeverFires) {
  TimerWheel wheel(0);
  Probe p(wheel);
  Probe other(wheel);
  wheel.arm(p.timer, 10);
  wheel.arm(other.timer, 10);
  wheel.cancel(p.timer);
  EXPECT_FALSE(p.timer.armed());
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(100), 1u);
  EXPECT_EQ(p.fired, 0);
  EXPECT_EQ(other.fired, 1);
}

TEST(TimerWheel, CancelOfUnarmedTimerIsNoOp) {
  TimerWheel wheel(0);
  Probe p(wheel);
  wheel.cancel(p.timer);
  p.timer.cancel();
  EXPECT_EQ(wheel.size(), 0u);
  wheel.arm(p.timer, 5);
  p.timer.cancel();  // the member form finds the wheel by itself
  wheel.cancel(p.timer);
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.ms_until_next(0), -1);
  EXPECT_EQ(wheel.advance(10), 0u);
}

TEST(TimerWheel, CancelKeepsOtherTimersInTheSameSlot) {
  TimerWheel wheel(0);
  Probe a(wheel), b(wheel), c(wheel);
  wheel.arm(a.timer, 5000);
  wheel.arm(b.timer, 5001);
  wheel.arm(c.timer, 5002);  // all three share a level-2 slot
  wheel.cancel(b.timer);
  EXPECT_EQ(wheel.advance(5001), 1u);
  EXPECT_EQ(wheel.advance(5002), 1u);
  EXPECT_EQ(a.fired + b.fired + c.fired, 2);
  EXPECT_EQ(b.fired, 0);
}

TEST(TimerWheel, RearmMovesTheTimerEarlierOrLater) {
  TimerWheel wheel(0);
  Probe p(wheel);
  wheel.arm(p.timer, 100);
  wheel.arm(p.timer, 50);
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(50), 1u);
  EXPECT_EQ(p.fired_at, 50u);
  EXPECT_EQ(wheel.advance(200), 0u);

  wheel.arm(p.timer, 300);
  wheel.arm(p.timer, 10 * kHour);
  EXPECT_EQ(wheel.advance(10 * kHour - 1), 0u);
  EXPECT_EQ(wheel.advance(10 * kHour), 1u);
  EXPECT_EQ(p.fired, 2);
}

TEST(TimerWheel, SetCallbackWhileArmedTakesEffectWhenFiring) {
  TimerWheel wheel(0);
  Probe first(wheel), second(wheel);
  wheel.arm(first.timer, 10);
  first.timer.set_callback(&Probe::on_fire, &second);
  wheel.advance(10);
  EXPECT_EQ(first.fired, 0);
  EXPECT_EQ(second.fired, 1);
}

TEST(TimerWheel, FarDeadlinesCascadeDownAndFireExactlyOnTime) {
  const uint64_t start = 1'700'000'123'456;  // an unaligned "now"
  const std::vector<uint64_t> delays = {3 * kHour + 17, 2 * kDay + 5, 400 * kDay + 1, 5 * 365 * kDay + 999,
                                        100 * 365 * kDay};
  for (uint64_t delay : delays) {
    TimerWheel wheel(start);
    Probe p(wheel);
    wheel.arm(p.timer, start + delay);
    // Walk the clock the way the loop would, including through every cascade point.
    uint64_t now = start;
    int wakeups = 0;
    while (p.fired == 0) {
      const int64_t wait = wheel.ms_until_next(now);
      ASSERT_GE(wait, 0);
      now += static_cast<uint64_t>(wait);
      ASSERT_LE(now, start + delay);
      wheel.advance(now);
      ASSERT_LT(++wakeups, 100);
    }
    EXPECT_EQ(now, start + delay);
    EXPECT_EQ(p.fired_at, start + delay);
    EXPECT_EQ(wheel.ms_until_next(now), -1);
  }
}

TEST(TimerWheel, DeadlinesBeyondTheWheelRangeNeverFireEarly) {
  const uint64_t start = TimerWheel::kRangeMs - 10;  // just before a top-level block ends
  for (uint64_t deadline : {TimerWheel::kRangeMs + 5, 3 * TimerWheel::kRangeMs + 12345,
                            start + 200 * TimerWheel::kRangeMs, kMax - 1, kMax}) {
    TimerWheel wheel(start);
    Probe p(wheel);
    wheel.arm(p.timer, deadline);
    EXPECT_GT(wheel.ms_until_next(start), 0);
    EXPECT_LE(static_cast<uint64_t>(wheel.ms_until_next(start)), deadline - start);
    // Stop at every top-level block boundary on the way: each is a re-cascade.
    for (uint64_t b = TimerWheel::kRangeMs; b < deadline && b < 8 * TimerWheel::kRangeMs; b += TimerWheel::kRangeMs) {
      EXPECT_EQ(wheel.advance(b - 1), 0u);
      EXPECT_EQ(wheel.advance(b), 0u);
    }
    EXPECT_EQ(wheel.advance(deadline - 1), 0u) << deadline;
    EXPECT_TRUE(p.timer.armed());
    EXPECT_EQ(wheel.advance(deadline), 1u) << deadline;
    EXPECT_EQ(p.fired_at, deadline);
  }
}

TEST(TimerWheel, OneBigClockJumpFiresFarTimersInOrder) {
  TimerWheel wheel(42);
  std::vector<int> log;
  std::vector<uint64_t> deadlines = {kMax, 5 * TimerWheel::kRangeMs + 1, 5 * TimerWheel::kRangeMs, 7 * kDay, 50};
  std::vector<std::unique_ptr<Probe>> probes;
  for (size_t i = 0; i < deadlines.size(); ++i) {
    probes.push_back(std::make_unique<Probe>(wheel));
    probes.back()->id = static_cast<int>(i);
    probes.back()->log = &log;
    wheel.arm(probes.back()->timer, deadlines[i]);
  }
  EXPECT_EQ(wheel.advance(kMax - 1), deadlines.size() - 1);
  EXPECT_EQ(log, (std::vector<int>{4, 3, 2, 1}));
  EXPECT_EQ(wheel.advance(kMax), 1u);
  for (const auto& p : probes) EXPECT_EQ(p->fired_at, p->timer.deadline_ms());
}

// The core property: 100k timers with deadlines from 0 ms to beyond the wheel's range, a
// clock advanced in random steps from 1 ms to many years. Each timer fires exactly once, in
// the first advance() whose time is at or after its deadline, seeing its deadline as the time.
TEST(TimerWheel, HundredThousandRandomTimersEachFireOnceAtFirstAdvanceAtOrAfterDeadline) {
  constexpr size_t kTimers = 100'000;
  std::mt19937_64 rng(20240601);
  const uint64_t start = 5'000'000'000;
  TimerWheel wheel(start);
  auto probes = std::make_unique<Probe[]>(kTimers);
  const uint64_t scales[] = {1, 64, 4096, kHour, 30 * kDay, 50 * 365 * kDay, 4 * TimerWheel::kRangeMs};
  std::vector<uint64_t> deadline(kTimers);
  for (size_t i = 0; i < kTimers; ++i) {
    const uint64_t scale = scales[rng() % std::size(scales)];
    deadline[i] = start + rng() % (scale + 1);
    probes[i].wheel = &wheel;
    wheel.arm(probes[i].timer, deadline[i]);
  }
  ASSERT_EQ(wheel.size(), kTimers);

  size_t round = 0;
  for (size_t i = 0; i < kTimers; ++i) probes[i].round = &round;
  std::vector<uint64_t> target;  // target[r] = the time passed to the r-th advance()
  uint64_t now = start;
  size_t fired = 0;
  while (wheel.size() > 0) {
    const uint64_t step_scale = scales[rng() % std::size(scales)];
    now += 1 + rng() % step_scale;
    target.push_back(now);
    fired += wheel.advance(now);
    ASSERT_LT(++round, 100'000u);
  }
  EXPECT_EQ(fired, kTimers);
  for (size_t i = 0; i < kTimers; ++i) {
    ASSERT_EQ(probes[i].fired, 1) << i;
    const size_t r = probes[i].fired_round;
    ASSERT_GE(target[r], deadline[i]) << i;
    ASSERT_LT(r == 0 ? start : target[r - 1], std::max(deadline[i], start + 1)) << i;
    // Deadline == start was overdue at arm time and fired at the wheel's time then.
    ASSERT_EQ(probes[i].fired_at, std::max(deadline[i], start)) << i;
  }
}

// Random arm / re-arm / cancel between advances, checked against an ordered-set model:
// each advance() fires exactly the armed timers due by then, overdue ones first, the rest
// in deadline order; ms_until_next() is never later than the earliest armed deadline.
TEST(TimerWheel, RandomArmRearmCancelMatchesAnOrderedModel) {
  constexpr size_t kTimers = 20'000;
  std::mt19937_64 rng(7);
  uint64_t now = 123;
  TimerWheel wheel(now);
  auto probes = std::make_unique<Probe[]>(kTimers);
  std::vector<int> log;
  std::set<std::pair<uint64_t, size_t>> model;
  std::vector<uint64_t> model_deadline(kTimers, 0);
  std::vector<bool> model_armed(kTimers, false);
  for (size_t i = 0; i < kTimers; ++i) {
    probes[i].wheel = &wheel;
    probes[i].id = static_cast<int>(i);
    probes[i].log = &log;
  }
  const uint64_t scales[] = {4, 100, 5000, 400'000, 30'000'000, 3 * TimerWheel::kRangeMs};

  for (int round = 0; round < 3000; ++round) {
    for (int op = 0; op < 40; ++op) {
      const size_t i = rng() % kTimers;
      if (rng() % 4 == 0) {
        wheel.cancel(probes[i].timer);
        if (model_armed[i]) model.erase({model_deadline[i], i});
        model_armed[i] = false;
      } else {
        // Mostly future deadlines, a few at or before now.
        const uint64_t scale = scales[rng() % std::size(scales)];
        const uint64_t d = now - std::min<uint64_t>(now, rng() % 3) + rng() % scale;
        wheel.arm(probes[i].timer, d);
        if (model_armed[i]) model.erase({model_deadline[i], i});
        model_armed[i] = true;
        model_deadline[i] = d;
        model.insert({d, i});
      }
    }
    ASSERT_EQ(wheel.size(), model.size());
    if (!model.empty()) {
      const int64_t hint = wheel.ms_until_next(now);
      ASSERT_GE(hint, 0);
      const uint64_t first = model.begin()->first;
      ASSERT_LE(static_cast<uint64_t>(hint), first > now ? first - now : 0) << "round " << round;
    } else {
      ASSERT_EQ(wheel.ms_until_next(now), -1);
    }

    const uint64_t prev = now;
    now += rng() % scales[rng() % 4];
    log.clear();
    const size_t fired = wheel.advance(now);
    std::vector<size_t> due;
    while (!model.empty() && model.begin()->first <= now) {
      due.push_back(model.begin()->second);
      model_armed[model.begin()->second] = false;
      model.erase(model.begin());
    }
    ASSERT_EQ(fired, due.size()) << "round " << round;
    ASSERT_EQ(log.size(), due.size());
    std::vector<int> sorted_log = log;
    std::sort(sorted_log.begin(), sorted_log.end());
    std::vector<int> sorted_due(due.begin(), due.end());
    std::sort(sorted_due.begin(), sorted_due.end());
    ASSERT_EQ(sorted_log, sorted_due);
    uint64_t last = 0;
    for (int id : log) {
      const uint64_t d = model_deadline[static_cast<size_t>(id)];
      if (d <= prev) continue;  // overdue at arm time: fired first, in arm order
      ASSERT_LE(last, d);
      last = d;
    }
  }
}

// The shard loop sleeps exactly ms_until_next() each turn. If the hint were ever later than a
// deadline, some timer would fire late; if it were 0 without anything to do, the loop would spin.
TEST(TimerWheel, LoopSleepingForMsUntilNextFiresEveryTimerExactlyOnTime) {
  std::mt19937_64 rng(99);
  const uint64_t start = 77'777;
  TimerWheel wheel(start);
  constexpr size_t kTimers = 2000;
  auto probes = std::make_unique<Probe[]>(kTimers);
  for (size_t i = 0; i < kTimers; ++i) {
    probes[i].wheel = &wheel;
    const uint64_t scale = uint64_t{1} << (rng() % 40);
    wheel.arm(probes[i].timer, start + 1 + rng() % scale);
  }
  uint64_t now = start;
  size_t wakeups = 0;
  size_t fired = 0;
  for (int64_t wait; (wait = wheel.ms_until_next(now)) >= 0;) {
    ASSERT_GT(wait, 0);  // nothing overdue ever remains after an advance()
    now += static_cast<uint64_t>(wait);
    fired += wheel.advance(now);
    ++wakeups;
  }
  EXPECT_EQ(fired, kTimers);
  for (size_t i = 0; i < kTimers; ++i) {
    ASSERT_EQ(probes[i].fired, 1);
    ASSERT_EQ(probes[i].fired_at, probes[i].timer.deadline_ms());
  }
  // Each timer costs at most one wakeup per level it cascades through.
  EXPECT_LE(wakeups, kTimers * TimerWheel::kLevels);
}

TEST(TimerWheel, MsUntilNextIsExactForNearDeadlinesAndMinusOneWhenEmpty) {
  TimerWheel wheel(1000);
  EXPECT_EQ(wheel.ms_until_next(1000), -1);
  Probe p(wheel);
  wheel.arm(p.timer, 1020);  // same 64 ms block as now: no cascade point in between
  EXPECT_EQ(wheel.ms_until_next(1000), 20);
  EXPECT_EQ(wheel.ms_until_next(1010), 10);  // the caller's clock may be ahead of the wheel
  EXPECT_EQ(wheel.ms_until_next(2000), 0);
  Probe far(wheel);
  wheel.arm(far.timer, kMax);
  EXPECT_EQ(wheel.ms_until_next(1000), 20);
  wheel.cancel(p.timer);
  EXPECT_GT(wheel.ms_until_next(1000), 0);
  // A deadline in the next block may be announced early (at its cascade point), never late.
  wheel.arm(p.timer, 1030);
  EXPECT_GT(wheel.ms_until_next(1000), 0);
  EXPECT_LE(wheel.ms_until_next(1000), 30);
}

struct Canceller {
  Timer timer;
  Timer* victim = nullptr;
  TimerWheel* wheel = nullptr;
  int fired = 0;
};

TEST(TimerWheel, CallbackCancelsAnotherTimerDueInTheSameAdvance) {
  TimerWheel wheel(0);
  Canceller a, b;
  auto cb = [](void* arg) {
    auto* self = static_cast<Canceller*>(arg);
    ++self->fired;
    self->wheel->cancel(*self->victim);
  };
  a.timer.set_callback(cb, &a);
  b.timer.set_callback(cb, &b);
  a.victim = &b.timer;
  b.victim = &a.timer;
  a.wheel = b.wheel = &wheel;
  // Same deadline, but reached through different levels, so neither order is assumed.
  wheel.arm(a.timer, 5000);
  wheel.advance(4990);
  wheel.arm(b.timer, 5000);
  EXPECT_EQ(wheel.advance(6000), 1u);
  EXPECT_EQ(a.fired + b.fired, 1);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, CallbackCancelsALaterTimerDueInTheSameAdvance) {
  TimerWheel wheel(0);
  Canceller first;
  Probe later(wheel);
  first.wheel = &wheel;
  first.victim = &later.timer;
  first.timer.set_callback(
      [](void* arg) {
        auto* self = static_cast<Canceller*>(arg);
        ++self->fired;
        self->wheel->cancel(*self->victim);
      },
      &first);
  wheel.arm(first.timer, 10);
  wheel.arm(later.timer, 2000);
  EXPECT_EQ(wheel.advance(3000), 1u);
  EXPECT_EQ(later.fired, 0);
}

struct Owner {
  Timer timer;
  std::unique_ptr<Owner>* peer = nullptr;  // the slot holding the other owner
  std::unique_ptr<Owner>* self = nullptr;
  int* fired = nullptr;
};

TEST(TimerWheel, CallbackMayDestroyTheOwnerOfAPendingTimer) {
  TimerWheel wheel(0);
  int fired = 0;
  std::unique_ptr<Owner> a = std::make_unique<Owner>();
  std::unique_ptr<Owner> b = std::make_unique<Owner>();
  auto cb = [](void* arg) {
    auto* self = static_cast<Owner*>(arg);
    ++*self->fired;
    self->peer->reset();  // ~Timer cancels the peer's armed timer
  };
  for (auto* o : {&a, &b}) {
    (*o)->timer.set_callback(cb, o->get());
    (*o)->fired = &fired;
  }
  a->peer = &b;
  b->peer = &a;
  wheel.arm(a->timer, 10);
  wheel.arm(b->timer, 10);
  EXPECT_EQ(wheel.advance(10), 1u);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_TRUE((a == nullptr) != (b == nullptr));
}

TEST(TimerWheel, CallbackMayDestroyItsOwnOwner) {
  TimerWheel wheel(0);
  auto owned = std::make_unique<Owner>();
  Probe after(wheel);
  owned->self = &owned;
  owned->timer.set_callback([](void* arg) { static_cast<Owner*>(arg)->self->reset(); }, owned.get());
  wheel.arm(owned->timer, 5);
  wheel.arm(after.timer, 5);
  EXPECT_EQ(wheel.advance(5), 2u);
  EXPECT_EQ(owned, nullptr);
  EXPECT_EQ(after.fired, 1);
}

struct Rearmer {
  Timer timer;
  TimerWheel* wheel = nullptr;
  uint64_t period = 0;
  int fired = 0;
  std::vector<uint64_t> times;
};

TEST(TimerWheel, PeriodicTimerRearmingItselfFiresOncePerPeriodWithinOneAdvance) {
  TimerWheel wheel(0);
  Rearmer r;
  r.wheel = &wheel;
  r.period = 10;
  r.timer.set_callback(
      [](void* arg) {
        auto* self = static_cast<Rearmer*>(arg);
        ++self->fired;
        self->times.push_back(self->wheel->now_ms());
        self->wheel->arm(self->timer, self->timer.deadline_ms() + self->period);
      },
      &r);
  wheel.arm(r.timer, 10);
  EXPECT_EQ(wheel.advance(100), 10u);
  EXPECT_EQ(r.times.front(), 10u);
  EXPECT_EQ(r.times.back(), 100u);
  EXPECT_TRUE(r.timer.armed());
  EXPECT_EQ(r.timer.deadline_ms(), 110u);
}

TEST(TimerWheel, TimerRearmedForNowInsideItsCallbackWaitsForTheNextAdvance) {
  TimerWheel wheel(0);
  Rearmer r;
  r.wheel = &wheel;
  r.timer.set_callback(
      [](void* arg) {
        auto* self = static_cast<Rearmer*>(arg);
        ++self->fired;
        self->wheel->arm(self->timer, self->wheel->now_ms());
      },
      &r);
  wheel.arm(r.timer, 3);
  EXPECT_EQ(wheel.advance(50), 1u);  // no livelock
  EXPECT_EQ(wheel.ms_until_next(50), 0);
  EXPECT_EQ(wheel.advance(50), 1u);
  EXPECT_EQ(wheel.advance(51), 1u);
  EXPECT_EQ(r.fired, 3);
}

struct Spawner {
  Timer timer;
  TimerWheel* wheel = nullptr;
  Probe* child = nullptr;
  uint64_t child_delay = 0;
};

TEST(TimerWheel, TimerArmedByACallbackFiresInTheSameAdvanceIfDue) {
  TimerWheel wheel(0);
  Probe child(wheel);
  Spawner s;
  s.wheel = &wheel;
  s.child = &child;
  s.child_delay = 300;  // lands in a higher level, must cascade within this advance()
  s.timer.set_callback(
      [](void* arg) {
        auto* self = static_cast<Spawner*>(arg);
        self->wheel->arm(self->child->timer, self->wheel->now_ms() + self->child_delay);
      },
      &s);
  wheel.arm(s.timer, 20);
  EXPECT_EQ(wheel.advance(320), 2u);
  EXPECT_EQ(child.fired_at, 320u);

  wheel.arm(s.timer, 400);
  EXPECT_EQ(wheel.advance(699), 1u);
  EXPECT_EQ(child.fired, 1);
  EXPECT_EQ(wheel.advance(700), 1u);
  EXPECT_EQ(child.fired, 2);
}

TEST(TimerWheel, DestroyingAnArmedTimerCancelsIt) {
  TimerWheel wheel(0);
  Probe survivor(wheel);
  wheel.arm(survivor.timer, 64 * 64 + 3);
  {
    Probe doomed(wheel);
    wheel.arm(doomed.timer, 64 * 64 + 3);  // same slot as the survivor
    EXPECT_EQ(wheel.size(), 2u);
  }
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(10 * kHour), 1u);
  EXPECT_EQ(survivor.fired, 1);
}

TEST(TimerWheel, DestroyingTheWheelDisarmsItsTimers) {
  Probe p;
  Probe overdue;
  Probe beyond;
  {
    TimerWheel wheel(100);
    wheel.arm(p.timer, 5000);
    wheel.arm(overdue.timer, 1);
    wheel.arm(beyond.timer, kMax);
  }
  EXPECT_FALSE(p.timer.armed());
  EXPECT_FALSE(overdue.timer.armed());
  EXPECT_FALSE(beyond.timer.armed());
}

TEST(TimerWheel, ThrowingCallbackLeavesTheOtherDueTimersForTheNextAdvance) {
  TimerWheel wheel(0);
  Timer thrower([](void*) { throw std::runtime_error("boom"); }, nullptr);
  Probe a(wheel), b(wheel), c(wheel);
  wheel.arm(a.timer, 10);
  wheel.arm(thrower, 10);
  wheel.arm(b.timer, 10);
  wheel.arm(c.timer, 500);
  EXPECT_THROW(wheel.advance(20), std::runtime_error);
  EXPECT_EQ(a.fired, 1);
  EXPECT_EQ(b.fired, 0);
  EXPECT_TRUE(b.timer.armed());
  EXPECT_EQ(wheel.size(), 2u);
  EXPECT_EQ(wheel.ms_until_next(20), 0);
  EXPECT_EQ(wheel.advance(20), 1u);
  EXPECT_EQ(b.fired, 1);
  EXPECT_EQ(wheel.advance(500), 1u);
  EXPECT_EQ(c.fired, 1);
}

TEST(TimerWheel, ClockGoingBackwardsDoesNotRewindTheWheel) {
  TimerWheel wheel(1000);
  Probe p(wheel);
  wheel.arm(p.timer, 1500);
  EXPECT_EQ(wheel.advance(900), 0u);
  EXPECT_EQ(wheel.now_ms(), 1000u);
  EXPECT_EQ(wheel.advance(1499), 0u);
  EXPECT_EQ(wheel.advance(1200), 0u);
  EXPECT_EQ(wheel.now_ms(), 1499u);
  EXPECT_EQ(wheel.advance(1500), 1u);
}

TEST(TimerWheel, TimerMovesBetweenWheels) {
  TimerWheel one(0), two(0);
  Probe p(one);
  one.arm(p.timer, 10);
  two.arm(p.timer, 20);
  EXPECT_EQ(one.size(), 0u);
  EXPECT_EQ(two.size(), 1u);
  EXPECT_EQ(one.advance(15), 0u);
  EXPECT_EQ(two.advance(20), 1u);
}

TEST(TimerWheel, MonotonicNowMatchesSteadyClockInMilliseconds) {
  const uint64_t a = TimerWheel::monotonic_now_ms();
  const auto steady = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
  const uint64_t b = TimerWheel::monotonic_now_ms();
  EXPECT_LE(a, b);
  EXPECT_LE(a, steady);
  EXPECT_LE(steady, b + 1);
}

}  // namespace
}  // namespace uringrpc::loop
