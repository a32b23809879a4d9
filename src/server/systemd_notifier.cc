// sd_notify(3) messages of a server's life (systemd_notifier.h). Without NOTIFY_SOCKET
// (not under systemd) nothing is set up and every call returns at once.
#include "server/systemd_notifier.h"

#include <pthread.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include "base/log.h"
#include "loop/timer_wheel.h"

namespace uringrpc::server {
namespace {

bool notify_socket_set() {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s && *s;
}

uint64_t watchdog_usec_for_us(const SystemdOptions& options) {
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is this process.
  if (!options.watchdog || !notify_socket_set() || sd_watchdog_enabled(0, &usec) <= 0) return 0;
  return usec;
}

uint64_t now_ms() { return loop::TimerWheel::monotonic_now_ms(); }

}  // namespace

SystemdNotifier::SystemdNotifier(const SystemdOptions& options, unsigned shards, PostProbe post_probe)
    : notify_(options.notify && notify_socket_set()),
      watchdog_interval_ms_(watchdog_ping_interval_ms(watchdog_usec_for_us(options))),
      shards_(shards),
      post_probe_(std::move(post_probe)),
      probes_run_(std::make_unique<std::atomic<uint64_t>[]>(shards)),
      rule_(shards) {}

SystemdNotifier::~SystemdNotifier() { stopped(); }

void SystemdNotifier::send(const std::string& message) {
  int rc = sd_notify(0, message.c_str());
  if (rc < 0) URINGRPC_LOG(base::LogLevel::kWarn, "sd_notify(\"%s\") failed: error %d", message.c_str(), -rc);
}

void SystemdNotifier::ready(const std::string& status) {
  if (!active()) return;
  if (notify_) send("READY=1\nSTATUS=" + status);
  URINGRPC_LOG(base::LogLevel::kInfo, "systemd: %s%s; watchdog pings every %llu ms", notify_ ? "READY=1, " : "",
               status.c_str(), (unsigned long long)watchdog_interval_ms_);
  std::lock_guard<std::mutex> lock(mu_);
  if (mode_ != Mode::kIdle) return;
  mode_ = Mode::kRunning;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "uringrpc/sd");
    run();
  });
}

void SystemdNotifier::stopping(uint64_t deadline_ms, uint64_t grace_ms) {
  if (!active()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (mode_ == Mode::kStopping || mode_ == Mode::kDone) return;
  // Sent under the lock, so that no watchdog ping can follow STOPPING=1.
  if (notify_) {
    std::string message = "STOPPING=1\nSTATUS=stopping: in-flight calls get up to " + std::to_string(grace_ms) + " ms";
    if (grace_ms > 0) message += "\nEXTEND_TIMEOUT_USEC=" + std::to_string((grace_ms + kStopMarginMs) * 1000);
    send(message);
  }
  stop_deadline_ms_ = deadline_ms;
  if (mode_ == Mode::kRunning) mode_ = Mode::kStopping;
  cv_.notify_all();
}

void SystemdNotifier::stopped() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = Mode::kDone;
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void SystemdNotifier::watchdog_tick() {
  std::vector<uint64_t> runs(shards_);
  for (unsigned i = 0; i < shards_; ++i) runs[i] = probes_run_[i].load(std::memory_order_relaxed);
  WatchdogRule::Verdict v = rule_.tick(runs);
  if (v.ping) {
    send("WATCHDOG=1");
    if (stall_reported_) URINGRPC_LOG(base::LogLevel::kInfo, "systemd watchdog: every shard turns again; pings resume");
    stall_reported_ = false;
  } else if (!v.stalled.empty() && !stall_reported_) {
    stall_reported_ = true;
    URINGRPC_LOG(base::LogLevel::kWarn,
                 "systemd watchdog: shard %u has not run its loop for over %llu ms (blocked in a handler?); "
                 "WATCHDOG=1 withheld until it does",
                 v.stalled.front(), (unsigned long long)watchdog_interval_ms_);
  }
  for (unsigned i : v.post_probe) post_probe_(i, &probes_run_[i]);
}

void SystemdNotifier::run() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t next_ping = now_ms();
  uint64_t next_extend = now_ms() + kExtendEveryMs;
  for (;;) {
    uint64_t now = now_ms();
    uint64_t wake;
    if (mode_ == Mode::kDone) return;
    if (mode_ == Mode::kRunning) {
      if (watchdog_interval_ms_ == 0) {
        cv_.wait(lock);
        next_extend = now_ms() + kExtendEveryMs;
        continue;
      }
      if (now >= next_ping) {
        watchdog_tick();  // under the lock: stopping() cannot slip between verdict and ping
        next_ping = now + watchdog_interval_ms_;
      }
      next_extend = now + kExtendEveryMs;
      wake = next_ping;
    } else {  // kStopping
      if (!notify_ || now >= stop_deadline_ms_) {
        cv_.wait(lock);  // the grace is over: systemd's own TimeoutStopSec= and our margin apply
        continue;
      }
      if (now >= next_extend) {
        send("EXTEND_TIMEOUT_USEC=" + std::to_string((stop_deadline_ms_ - now + kStopMarginMs) * 1000));
        next_extend = now + kExtendEveryMs;
      }
      wake = std::min(next_extend, stop_deadline_ms_);
    }
    cv_.wait_for(lock, std::chrono::milliseconds(wake > now ? wake - now : 0));
  }
}

}  // namespace uringrpc::server
