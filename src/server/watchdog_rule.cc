// WatchdogRule (watchdog_rule.h): the verdict of each tick of the systemd watchdog.
#include "server/watchdog_rule.h"

#include <algorithm>

namespace uringrpc::server {

WatchdogRule::WatchdogRule(unsigned shards) : seen_(shards, 0), pending_(shards, false), turned_(shards, false) {}

WatchdogRule::Verdict WatchdogRule::tick(const std::vector<uint64_t>& probes_run) {
  Verdict v;
  const size_t n = seen_.size();
  // Stalled: its probe was posted at an earlier tick and has still not run.
  std::vector<bool> was_pending = pending_;
  for (size_t i = 0; i < n && i < probes_run.size(); ++i) {
    if (probes_run[i] != seen_[i]) {
      seen_[i] = probes_run[i];
      pending_[i] = false;
      turned_[i] = true;
    }
  }
  v.ping = n > 0 && std::all_of(turned_.begin(), turned_.end(), [](bool t) { return t; });
  if (v.ping) {
    std::fill(turned_.begin(), turned_.end(), false);
    withheld_ticks_ = 0;
  } else {
    ++withheld_ticks_;
    for (size_t i = 0; i < n; ++i) {
      if (!turned_[i] && was_pending[i]) v.stalled.push_back(static_cast<unsigned>(i));
    }
  }
  // Probed after the verdict: a probe posted now proves a turn after this tick's ping.
  for (size_t i = 0; i < n; ++i) {
    if (!pending_[i]) {
      pending_[i] = true;
      v.post_probe.push_back(static_cast<unsigned>(i));
    }
  }
  return v;
}

uint64_t watchdog_ping_interval_ms(uint64_t watchdog_usec) {
  if (watchdog_usec == 0) return 0;
  return std::max<uint64_t>(watchdog_usec / 2000, 1);
}

}  // namespace uringrpc::server
