// The systemd watchdog's rule: WATCHDOG=1 may be sent only when every shard's loop has
// turned since the previous ping. A turn is proven by a probe posted to the shard and run
// by its loop; the systemd notifier (systemd_notifier.cc) ticks this rule every
// WATCHDOG_USEC/2 with the shards' counts of probes run, sends what it answers and posts
// the probes it asks for. No I/O and no clock inside, so unit tests walk its boundaries.
#pragma once

#include <cstdint>
#include <vector>

namespace uringrpc::server {

class WatchdogRule {
 public:
  explicit WatchdogRule(unsigned shards);

  struct Verdict {
    bool ping = false;                 // send WATCHDOG=1 now
    std::vector<unsigned> post_probe;  // shards to post a new probe to (none still pending)
    std::vector<unsigned> stalled;     // shards whose probe, posted at an earlier tick, has not run
  };

  // probes_run[i]: how many probes shard i has run so far (a counter only shard i raises).
  // At most one probe per shard is pending: a stuck shard's inbox does not grow.
  Verdict tick(const std::vector<uint64_t>& probes_run);

  // Ticks in a row that withheld the ping (0 after a ping).
  unsigned withheld_ticks() const { return withheld_ticks_; }

 private:
  std::vector<uint64_t> seen_;   // probes_run at the previous tick
  std::vector<bool> pending_;    // a probe was posted and has not run yet
  std::vector<bool> turned_;     // a probe ran since the previous ping
  unsigned withheld_ticks_ = 0;
};

// The ping period for WATCHDOG_USEC (sd_watchdog_enabled): half of it, as sd_watchdog_enabled(3)
// advises, in whole milliseconds and at least 1; 0 (no watchdog) stays 0.
uint64_t watchdog_ping_interval_ms(uint64_t watchdog_usec);

}  // namespace uringrpc::server
