// The health service of uringrpc/health.h: grpc.health.v1.Health, generated from Debian's
// health.proto by our own plugin, on the public API only. Check reads an immutable snapshot
// of the statuses that each shard thread caches (no lock once it has the latest); Watch
// streams sleep on a Notifier that set_status() wakes from any thread through the shard's
// inbox. The server's stop hook turns every service NOT_SERVING and ends the Watch streams.
#include "uringrpc/health.h"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "grpc/health/v1/health.uringrpc.pb.h"
#include "uringrpc/notify.h"
#include "uringrpc/uringrpc.h"

namespace uringrpc::services {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using Serving = HealthCheckResponse::ServingStatus;

// What Check and Watch read; never changed once published.
struct Snapshot {
  std::map<std::string, Serving, std::less<>> statuses;
  bool stopping = false;

  Serving watch_status(std::string_view service) const {
    auto it = statuses.find(service);
    return it == statuses.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second;
  }
};

// A thread's copy of the latest snapshot of each health service it served (a shard thread
// serves one server, so normally one entry). Keyed by a process-unique id rather than the
// object's address, which a later service could reuse.
struct CachedSnapshot {
  uint64_t owner;
  uint64_t version;
  std::shared_ptr<const Snapshot> snapshot;
};
thread_local std::vector<CachedSnapshot> t_snapshots;
std::atomic<uint64_t> g_next_id{1};

}  // namespace

class HealthImpl final : public grpc::health::v1::HealthService {
 public:
  HealthImpl() {
    statuses_.emplace("", HealthCheckResponse::SERVING);
    publish_locked();
  }

  // nullopt: forget the service.
  void set(std::string_view service, std::optional<Serving> status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    auto it = statuses_.find(service);
    if (status) {
      if (it != statuses_.end() && it->second == *status) return;
      statuses_.insert_or_assign(std::string(service), *status);
    } else {
      if (it == statuses_.end()) return;
      statuses_.erase(it);
    }
    publish_locked();
    for (Watcher* w : watchers_) {
      if (w->service == service) w->notifier.notify();
    }
  }

  // The server's stop begins (Server::on_stop_begin): runs before its GOAWAYs.
  void begin_stop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
    publish_locked();
    for (Watcher* w : watchers_) w->notifier.notify();
  }

  void claim(const void* server) {
    std::lock_guard<std::mutex> lock(mu_);
    if (server_ && server_ != server) throw UsageError("a HealthService serves one Server; it was added to another");
    server_ = server;
  }

  Task<HealthCheckResponse> Check(HealthCheckRequest req, ServerContext&) override {
    const Snapshot& snap = *current();
    auto it = snap.statuses.find(req.service());
    if (it == snap.statuses.end()) co_return Status{StatusCode::NOT_FOUND, "unknown service"};
    HealthCheckResponse resp;
    resp.set_status(it->second);
    co_return resp;
  }

  // The current status at once, then each change (coalesced: a burst of changes may arrive
  // as its last state only). Once the server's stop began: NOT_SERVING (or SERVICE_UNKNOWN)
  // and then the stream ends with UNAVAILABLE, so Watch streams never hold a graceful stop
  // open for its grace period.
  Stream<HealthCheckResponse> Watch(HealthCheckRequest req, ServerContext& ctx) override {
    // Registered before the first look: a change after the look always wakes this stream.
    Registration reg(*this, req.service());
    int sent = -1;
    for (;;) {
      std::shared_ptr<const Snapshot> snap = current();  // a copy: it must survive the waits
      Serving status = snap->watch_status(req.service());
      if (status != sent) {
        HealthCheckResponse resp;
        resp.set_status(status);
        if (!co_await ctx.write(std::move(resp))) co_return;  // the call is over
        sent = status;
      }
      if (snap->stopping) {
        ctx.set_code(StatusCode::UNAVAILABLE);
        ctx.set_details("the server is stopping");
        co_return;
      }
      co_await reg.watcher.notifier.wait();
    }
  }

 private:
  struct Watcher {
    std::string service;
    Notifier notifier;  // bound to the shard of the Watch call
  };

  // A Watch stream's place in watchers_, for as long as its frame lives (a cancelled call's
  // frame is destroyed on its shard: the destructor unregisters it there).
  struct Registration {
    Registration(HealthImpl& h, std::string service) : health(h), watcher{std::move(service), {}} {
      std::lock_guard<std::mutex> lock(health.mu_);
      health.watchers_.push_back(&watcher);
    }
    ~Registration() {
      std::lock_guard<std::mutex> lock(health.mu_);
      std::erase(health.watchers_, &watcher);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    HealthImpl& health;
    Watcher watcher;
  };

  // This thread's latest snapshot: one atomic load while nothing changed, the lock only
  // on the first look after a change.
  const std::shared_ptr<const Snapshot>& current() {
    const uint64_t version = version_.load(std::memory_order_acquire);
    CachedSnapshot* cached = nullptr;
    for (auto& c : t_snapshots) {
      if (c.owner == id_) cached = &c;
    }
    if (!cached) cached = &t_snapshots.emplace_back(CachedSnapshot{id_, 0, nullptr});
    if (cached->version != version) {
      std::lock_guard<std::mutex> lock(mu_);
      cached->snapshot = snapshot_;
      cached->version = version_.load(std::memory_order_relaxed);
    }
    return cached->snapshot;
  }

  void publish_locked() {
    auto next = std::make_shared<Snapshot>();
    next->statuses = statuses_;
    next->stopping = stopping_;
    snapshot_ = std::move(next);
    version_.fetch_add(1, std::memory_order_release);
  }

  const uint64_t id_ = g_next_id.fetch_add(1, std::memory_order_relaxed);
  std::atomic<uint64_t> version_{0};
  // set(), begin_stop(), Watch registrations and a thread's refresh after a change; a
  // Check in the steady state takes none.
  std::mutex mu_;
  std::map<std::string, Serving, std::less<>> statuses_;
  bool stopping_ = false;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<Watcher*> watchers_;
  const void* server_ = nullptr;
};

}  // namespace uringrpc::services

namespace uringrpc {

HealthService::HealthService() : impl_(std::make_unique<services::HealthImpl>()) {}
HealthService::~HealthService() = default;

void HealthService::set_status(std::string_view service, ServingStatus status) {
  if (status != SERVING && status != NOT_SERVING) {
    throw std::invalid_argument("HealthService::set_status: status must be SERVING or NOT_SERVING, not " +
                                std::to_string(static_cast<int>(status)));
  }
  impl_->set(service, status == SERVING ? services::Serving(grpc::health::v1::HealthCheckResponse::SERVING)
                                        : services::Serving(grpc::health::v1::HealthCheckResponse::NOT_SERVING));
}

void HealthService::clear_status(std::string_view service) { impl_->set(service, std::nullopt); }

void HealthService::register_methods(Server& server) {
  impl_->claim(&server);
  impl_->register_methods(server);
  services::HealthImpl* impl = impl_.get();
  server.on_stop_begin([impl] { impl->begin_stop(); });
}

}  // namespace uringrpc
