// SystemdNotifier: the server's side of sd_notify(3). READY=1 and STATUS= at start,
// WATCHDOG=1 every WATCHDOG_USEC/2 while every shard's loop turns (WatchdogRule), and
// STOPPING=1 then EXTEND_TIMEOUT_USEC= while a stop's grace runs. ServerImpl (server.cc)
// owns one; its thread ("uringrpc/sd") wakes only for those messages, never per RPC.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/watchdog_rule.h"
#include "uringrpc/server.h"

namespace uringrpc::server {

class SystemdNotifier {
 public:
  // Posts to shard i a function that raises *runs by one on the shard's thread.
  using PostProbe = std::function<void(unsigned shard, std::atomic<uint64_t>* runs)>;

  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (for this process) once, here.
  SystemdNotifier(const SystemdOptions& options, unsigned shards, PostProbe post_probe);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // Whether anything will be sent (notify or watchdog on, and systemd listening).
  bool active() const { return notify_ || watchdog_interval_ms_ > 0; }
  uint64_t watchdog_interval_ms() const { return watchdog_interval_ms_; }

  // Every port listens and the shards run: READY=1 and STATUS=<status>; starts the pings.
  void ready(const std::string& status);
  // A stop began: pings end; STOPPING=1, STATUS=, and EXTEND_TIMEOUT_USEC= now and every
  // second until deadline_ms (monotonic) has passed. Any thread; only the first call counts.
  void stopping(uint64_t deadline_ms, uint64_t grace_ms);
  // The server has stopped: ends the thread. Idempotent.
  void stopped();

  // What systemd gets beyond the grace: cancelling what is left, flushing, joining.
  static constexpr uint64_t kStopMarginMs = 5000;
  static constexpr uint64_t kExtendEveryMs = 1000;

 private:
  enum class Mode { kIdle, kRunning, kStopping, kDone };
  void run();
  void watchdog_tick();
  void send(const std::string& message);

  const bool notify_;
  uint64_t watchdog_interval_ms_ = 0;
  const unsigned shards_;
  PostProbe post_probe_;
  std::unique_ptr<std::atomic<uint64_t>[]> probes_run_;
  WatchdogRule rule_;          // the thread's alone
  bool stall_reported_ = false;  // one log line per stall, one when pings resume

  std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_ = Mode::kIdle;
  uint64_t stop_deadline_ms_ = 0;
  std::thread thread_;
};

}  // namespace uringrpc::server
