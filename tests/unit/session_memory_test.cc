// Unit tests for http2::SessionMemory's sweep (http2/nghttp2_memory.h): the process-wide count
// of trimmed sessions is added once per sweep round, after the round, so a shard writes that
// shared line once per period rather than once per session (perf/README.md, "Nothing shared
// between shards"). Runs on a simulated clock: the wheel only sees the times passed in.
#include "http2/nghttp2_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace uringrpc::http2 {
namespace {

constexpr uint64_t kStart = 1'000'000;

// A session's owner whose sessions are always quiet: the sweep may trim them at once. Each
// call records what the process-wide count read while the round was running.
struct QuietOwner {
  std::vector<uint64_t>* seen;
  static bool idle(void* self) {
    static_cast<QuietOwner*>(self)->seen->push_back(SessionMemory::sweep_trims());
    return true;
  }
};

struct Sessions {
  explicit Sessions(loop::TimerWheel& wheel, int n, std::vector<uint64_t>& seen) : owner{&seen} {
    nghttp2_session_callbacks_new(&cbs);
    for (int i = 0; i < n; ++i) memory.push_back(new SessionMemory(&wheel, &QuietOwner::idle, &owner));
    for (SessionMemory* m : memory) {
      nghttp2_session* s = nullptr;
      // Building the session allocates through the memory: the session joins the sweep.
      EXPECT_EQ(m->new_server_session(&s, cbs, nullptr, nullptr), 0);
      sessions.push_back(s);
    }
  }
  ~Sessions() {
    for (nghttp2_session* s : sessions) nghttp2_session_del(s);
    for (SessionMemory* m : memory) delete m;
    nghttp2_session_callbacks_del(cbs);
  }
  QuietOwner owner;
  nghttp2_session_callbacks* cbs = nullptr;
  std::vector<SessionMemory*> memory;
  std::vector<nghttp2_session*> sessions;
};

TEST(SessionMemory, TrimsOfOneSweepRoundAreCountedOnceAfterTheRound) {
  loop::TimerWheel wheel(kStart);
  std::vector<uint64_t> seen;
  {
    Sessions s(wheel, 5, seen);
    const uint64_t before = SessionMemory::sweep_trims();
    // First round: every session allocated in the period just gone, so none is asked.
    wheel.advance(kStart + SessionMemory::kSweepPeriodMs);
    EXPECT_TRUE(seen.empty());
    EXPECT_EQ(SessionMemory::sweep_trims(), before);
    // Second round: all five are quiet and trimmed; the count moves by five, and only after
    // the round (each owner read the old value while the round ran).
    wheel.advance(kStart + 2 * SessionMemory::kSweepPeriodMs);
    ASSERT_EQ(seen.size(), 5u);
    for (uint64_t v : seen) EXPECT_EQ(v, before);
    EXPECT_EQ(SessionMemory::sweep_trims(), before + 5);
    // Trimmed sessions left the sweep: a later round neither asks nor counts them.
    wheel.advance(kStart + 3 * SessionMemory::kSweepPeriodMs);
    EXPECT_EQ(seen.size(), 5u);
    EXPECT_EQ(SessionMemory::sweep_trims(), before + 5);
  }
  // Drain the sweep's page release before the wheel goes (it stops once nothing is spare).
  for (int i = 4; i < 12; ++i) wheel.advance(kStart + i * SessionMemory::kSweepPeriodMs);
}

}  // namespace
}  // namespace uringrpc::http2
