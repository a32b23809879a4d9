// Server: configuration, ports, start, and the one cross-shard operation: stop.
#include "uringrpc/server.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>

#include "base/log.h"
#include "loop/cpu_steering.h"
#include "loop/listen_address.h"
#include "loop/listener.h"
#include "loop/offload_pool.h"
#include "loop/timer_wheel.h"
#include "rpc/interceptor_chain.h"
#include "rpc/method_table.h"
#include "rpc/rpc_limit.h"
#include "server/admin_http.h"
#include "server/access_log.h"
#include "server/layer_options.h"
#include "server/metrics_registry.h"
#include "server/server_shard.h"
#include "server/systemd_notifier.h"
#include "server/tls_reload.h"
#include "uringrpc/errors.h"
#include "uringrpc/systemd.h"

namespace uringrpc {
namespace server {

class ServerImpl {
 public:
  explicit ServerImpl(ServerOptions options) : options_(std::move(options)) {
    unsigned shards = options_.shards;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) cpus_.push_back(c);
      }
    }
    if (shards == 0) shards = cpus_.empty() ? 1 : static_cast<unsigned>(cpus_.size());
    validate(options_, shards);  // before anything is allocated or bound
    options_.shards = shards;
    rpc_ = rpc_config(options_);
    rpc_.methods = &methods_;
    if (options_.calls.max_concurrent > 0) {
      rpc_limit_ = std::make_unique<rpc::RpcLimit>(options_.calls.max_concurrent, options_.shards);
      rpc_.rpc_limit = rpc_limit_.get();
    }
    if (options_.calls.max_buffered_bytes > 0) {
      budgets_ = std::make_unique<rpc::MemoryBudget[]>(options_.shards);
      for (unsigned i = 0; i < options_.shards; ++i) {
        budgets_[i].limit = options_.calls.max_buffered_bytes / options_.shards;
      }
      rpc_.budgets = budgets_.get();
    }
  }

  ~ServerImpl() {
    if (started_) {
      stop(0);
    }
    for (auto& l : listeners_) l.set.close_all();
  }

  void add_method(std::string path, MethodHandler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_method after start()");
    methods_.add(std::move(path), std::move(handler));
  }

  void set_fallback_handler(MethodHandler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("set_fallback_handler after start()");
    methods_.set_fallback(std::move(handler));
  }

  void add_interceptor(std::shared_ptr<Interceptor> interceptor) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_interceptor after start()");
    if (!interceptor) throw std::invalid_argument("add_interceptor: null interceptor");
    interceptors_.push_back(std::move(interceptor));
  }

  void on_stop_begin(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("on_stop_begin after start()");
    if (!hook) throw std::invalid_argument("on_stop_begin: empty hook");
    stop_hooks_.push_back(std::move(hook));
  }

  int add_port(std::string_view address, Tls tls) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_port after start()");
    loop::ListenerSet set =
        loop::bind_listeners(address, options_.shards, options_.listen.so_reuseport, options_.listen.share_port);
    // The kernel cannot tell our own SO_REUSEPORT sockets from a sharer's: catch the same
    // port added twice to this server here.
    if (set.port != 0 && !bound_ports_.insert(set.port).second) {
      set.close_all();
      throw BindError("cannot bind " + std::string(address) + ": port " + std::to_string(set.port) +
                      " is already bound by this server");
    }
    int port = set.port;
    listeners_.push_back({std::move(set), std::move(tls)});
    return port;
  }

  int add_listen_fd(int fd, Tls tls, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_listen_fd after start()");
    return adopt_locked(fd, std::move(tls), what);
  }

  size_t add_listen_fds_from_systemd(std::string_view name, const Tls& tls) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_listen_fds_from_systemd after start()");
    auto passed = systemd::passed_sockets();
    std::string names;
    size_t added = 0;
    for (const auto& p : passed) {
      names += (names.empty() ? "'" : ", '") + p.name + "'";
      if (!name.empty() && p.name != name) continue;
      adopt_locked(p.fd, tls.copy(), "systemd socket '" + p.name + "' (fd " + std::to_string(p.fd) + ")");
      ++added;
    }
    if (added == 0) {
      throw std::invalid_argument(
          passed.empty() ? "add_listen_fds_from_systemd: systemd passed no socket to this process (LISTEN_FDS "
                           "unset, or LISTEN_PID names another process)"
                         : "add_listen_fds_from_systemd: no passed socket is named '" + std::string(name) +
                               "' (passed: " + names + ")");
    }
    return added;
  }

  // ListenOptions::raise_descriptor_limit: soft RLIMIT_NOFILE up to the hard limit.
  static void raise_descriptor_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) {
      URINGRPC_LOG(base::LogLevel::kInfo, "RLIMIT_NOFILE soft limit raised from %llu to %llu (connections are descriptors)",
                   (unsigned long long)was, (unsigned long long)rl.rlim_max);
    }
  }

  // ListenOptions::direct_slots_per_shard, 0 meaning the soft RLIMIT_NOFILE now (after
  // raise_descriptor_limit): the largest table the kernel lets a ring register.
  unsigned direct_slots_per_shard() const {
    constexpr rlim_t kMax = 1u << 20;  // IORING_MAX_FIXED_FILES
    if (options_.listen.direct_slots_per_shard != 0) return static_cast<unsigned>(options_.listen.direct_slots_per_shard);
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    return static_cast<unsigned>(std::min(rl.rlim_cur, kMax));
  }

  void start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("start() called twice");
    if (stopping_) throw UsageError("start() after stop()");
    // Socket activation: a server given no port serves what systemd passed.
    if (listeners_.empty() && options_.systemd.adopt_listen_fds) {
      for (const auto& p : systemd::passed_sockets()) {
        adopt_locked(p.fd, {}, "systemd socket '" + p.name + "' (fd " + std::to_string(p.fd) + ")");
      }
    }
    if (options_.metrics.enabled) {
      // Every method's slot on every shard is allocated here, before the first call; the
      // endpoint binds before any shard runs, so a taken port fails start() cleanly.
      auto registry = std::make_unique<MetricsRegistry>(method_labels(methods_), options_.shards,
                                                        methods_.fallback() != nullptr);
      if (!options_.metrics.listen.empty()) {
        admin_ = std::make_unique<AdminHttp>(options_.metrics.listen, [r = registry.get()] { return r->text(); });
        admin_port_ = admin_->port();
      }
      metrics_ = std::move(registry);
      rpc_.metrics = metrics_->shard_metrics();
    }
    started_ = true;
    if (options_.listen.raise_descriptor_limit) raise_descriptor_limit();
    build_interceptor_chain();
    offload_ = std::make_unique<loop::OffloadPool>(options_.offload_threads);
    ShardSetup setup = ShardSetup::from(options_);
    setup.rpc = &rpc_;
    setup.loop.offload_pool = offload_.get();
    setup.open_connections = options_.listen.max_connections ? &open_connections_ : nullptr;
    if (setup.direct) setup.loop.direct_slots = direct_slots_per_shard();
    for (unsigned i = 0; i < options_.shards; ++i) {
      std::vector<ListenSocket> sockets;
      for (auto& l : listeners_) {
        const bool shared = options_.shards > 1 && l.set.fds.size() == l.set.shard_fds[i].size();
        for (int fd : l.set.shard_fds[i]) sockets.push_back({fd, transport::TlsContextReader(l.tls.slot), shared});
      }
      setup.loop.index = i;
      if (options_.loop.pin_shards_to_cpus && !cpus_.empty()) setup.cpu = cpus_[i % cpus_.size()];
      shards_.push_back(std::make_unique<ServerShard>(setup, std::move(sockets)));
    }
    if (options_.listen.steer_to_receiving_cpu) steer_listeners();
    for (auto& s : shards_) s->start();
    notifier_ = std::make_unique<SystemdNotifier>(
        options_.systemd, options_.shards, [this](unsigned shard, std::atomic<uint64_t>* runs) {
          shards_[shard]->shard().post([runs] { runs->fetch_add(1, std::memory_order_relaxed); });
        });
    if (notifier_->active()) notifier_->ready(status_line());
  }

  void stop(int64_t grace_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t deadline = loop::TimerWheel::monotonic_now_ms() + static_cast<uint64_t>(std::max<int64_t>(grace_ms, 0));
    if (!stopping_) {
      stopping_ = true;
      // Before anything else a client could notice (listeners, GOAWAY): what the hooks post
      // to the shards is in their inboxes ahead of the shutdown message below.
      for (auto& hook : stop_hooks_) hook();
      // Refuse new connections now: a listening socket shut down leaves LISTEN at once,
      // while its descriptor stays valid until the shards have cancelled their accepts.
      // An adopted socket is not shut down: it is shared with its holder (systemd, the next
      // generation of this service), for whom connections keep queueing.
      for (auto& l : listeners_) {
        if (l.set.adopted) continue;
        for (int fd : l.set.fds) ::shutdown(fd, SHUT_RDWR);
      }
      if (notifier_) notifier_->stopping(deadline, static_cast<uint64_t>(std::max<int64_t>(grace_ms, 0)));
    }
    if (!started_) {
      joined_ = true;
      cv_.notify_all();
      return;
    }
    for (auto& s : shards_) s->post_shutdown(deadline);
    cv_.notify_all();  // a wait() may now take the joining role
    if (loop::Shard::current()) return;  // from a handler: the shutdown goes on without us
    join(lock);
  }

  void wait() {
    if (loop::Shard::current()) throw UsageError("Server::wait() called from a handler");
    std::unique_lock<std::mutex> lock(mu_);
    join(lock);
  }

 private:
  // Returns once every shard thread has ended. Exactly one caller joins the threads (a
  // thread cannot be joined twice); the others wait for it.
  void join(std::unique_lock<std::mutex>& lock) {
    while (!joined_) {
      if (stopping_ && !joining_) {
        joining_ = true;
        lock.unlock();
        for (auto& s : shards_) s->join();
        lock.lock();
        for (auto& l : listeners_) l.set.close_all();
        admin_.reset();  // scrapes were served until every call had ended
        if (notifier_) notifier_->stopped();
        joined_ = true;
        cv_.notify_all();
      } else {
        cv_.wait(lock);
      }
    }
  }

 public:
  const ServerOptions& options() const { return options_; }
  ShardRef shard(unsigned index) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) throw UsageError("Server::shard() before start()");
    if (index >= shards_.size()) throw std::out_of_range("Server::shard(): no shard " + std::to_string(index));
    return ShardRef(shards_[index]->shard().link());
  }

  // Builds every new context first, then installs them all: either every secure port takes
  // its new credentials or none does. Installing is safe against shards accepting and
  // handshaking meanwhile (TlsContextSlot); mu_ only orders reloads against each other and
  // against configuration. `replacement`: those credentials for every secure port; null:
  // each port's own credentials with their files read again.
  size_t reload_tls(const TlsCredentials* replacement) {
    std::lock_guard<std::mutex> lock(mu_);
    const char* what = replacement ? "set_tls_credentials" : "reload_tls";
    std::vector<std::pair<Tls*, PreparedTls>> next;
    try {
      std::optional<PreparedTls> shared;
      if (replacement) shared = prepare_tls(*replacement);
      for (auto& l : listeners_) {
        if (!l.tls.slot) continue;
        next.emplace_back(&l.tls, shared ? *shared : prepare_tls(l.tls.credentials.reread_files()));
      }
    } catch (const std::invalid_argument& e) {
      URINGRPC_LOG(base::LogLevel::kWarn, "%s: %s; the current TLS certificates stay in use", what, e.what());
      throw std::invalid_argument(std::string(what) + ": " + e.what() + "; the current TLS certificates stay in use");
    }
    for (auto& [tls, fresh] : next) tls->install(std::move(fresh));
    URINGRPC_LOG(base::LogLevel::kInfo, "%s: new TLS credentials for %zu secure port%s; new handshakes use them",
                 what, next.size(), next.size() == 1 ? "" : "s");
    return next.size();
  }

  std::string metrics_text() {
    const MetricsRegistry* registry;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!options_.metrics.enabled) throw UsageError("metrics_text(): metrics are off (ServerOptions::metrics.enabled)");
      if (!started_) throw UsageError("metrics_text() before start()");
      registry = metrics_.get();
    }
    return registry->text();  // lives as long as the server; not under the lock
  }

  int metrics_port() {
    std::lock_guard<std::mutex> lock(mu_);
    return admin_port_;
  }

 private:
  int adopt_locked(int fd, Tls tls, const std::string& what) {
    loop::ListenerSet set = loop::adopt_listener(fd, options_.shards, what);
    for (const auto& l : listeners_) {
      if (l.set.adopted && l.set.socket_ino == set.socket_ino) {
        set.close_all();
        throw std::invalid_argument(what + ": this socket was added to this server already");
      }
    }
    int port = set.port;
    listeners_.push_back({std::move(set), std::move(tls)});
    return port;
  }

  // The access log first (outermost: it sees the calls other interceptors refuse), then the
  // user's in the order added. None: the calls see a null chain and skip it in one branch.
  void build_interceptor_chain() {
    std::vector<std::shared_ptr<Interceptor>> chain;
    if (options_.access_log.enabled) chain.push_back(std::make_shared<AccessLog>(options_.access_log));
    chain.insert(chain.end(), interceptors_.begin(), interceptors_.end());
    if (chain.empty()) return;
    interceptor_chain_ = std::make_unique<rpc::InterceptorChain>(std::move(chain));
    rpc_.interceptors = interceptor_chain_.get();
  }

  // STATUS= for systemd: "serving on 127.0.0.1:50051 (h2c), [::1]:50051 (h2c); 4 shards".
  std::string status_line() const {
    std::string s = "serving on ";
    std::set<std::string> seen;  // SO_REUSEPORT copies share their address
    for (const auto& l : listeners_) {
      for (int fd : l.set.fds) {
        // The bound address (port 0 resolved); an adopted socket's text says where it came from.
        std::string where = l.set.address;
        loop::Endpoint ep;
        ep.len = sizeof ep.addr;
        if (!l.set.adopted && ::getsockname(fd, reinterpret_cast<sockaddr*>(&ep.addr), &ep.len) == 0) {
          where = ep.to_string();
        }
        if (!seen.insert(where).second) continue;
        s += (seen.size() > 1 ? ", " : "") + where + (l.tls.slot ? " (TLS)" : " (h2c)");
      }
    }
    if (seen.empty()) s += "no port";
    return s + "; " + std::to_string(options_.shards) + (options_.shards == 1 ? " shard" : " shards");
  }

  // Each SO_REUSEPORT group (one per address a port resolved to) gets the CPU → shard
  // program; the groups' sockets joined in shard order (loop::bind_listeners). Unix and
  // adopted sockets have no group of ours. A kernel that refuses leaves the kernel's hash
  // spreading connections: logged, not fatal.
  void steer_listeners() {
    std::vector<int> shard_cpus;
    for (unsigned i = 0; i < options_.shards; ++i) shard_cpus.push_back(cpus_.empty() ? 0 : cpus_[i % cpus_.size()]);
    for (auto& l : listeners_) {
      if (l.set.adopted || !l.set.unix_path.empty() || l.set.fds.size() < options_.shards) continue;
      const size_t per_shard = l.set.fds.size() / options_.shards;
      for (size_t e = 0; e < per_shard; ++e) {
        if (int err = loop::attach_cpu_steering(l.set.fds[e], shard_cpus)) {
          URINGRPC_LOG(base::LogLevel::kWarn, "%s: cannot steer connections by CPU (SO_ATTACH_REUSEPORT_CBPF): %s",
                       l.set.address.c_str(), std::strerror(err));
        }
      }
    }
  }

  struct Listener {
    loop::ListenerSet set;
    Tls tls;
  };

  ServerOptions options_;
  std::vector<int> cpus_;  // the process's affinity mask at construction, ascending
  rpc::MethodTable methods_;
  rpc::RpcConfig rpc_;
  std::unique_ptr<rpc::RpcLimit> rpc_limit_;  // calls.max_concurrent; null: no limit
  std::unique_ptr<rpc::MemoryBudget[]> budgets_;  // one per shard
  std::atomic<size_t> open_connections_{0};  // counted only under max_connections
  std::vector<Listener> listeners_;
  std::set<int> bound_ports_;
  std::unique_ptr<loop::OffloadPool> offload_;
  // Before shards_, so destroyed after them: every shard writes its counters here.
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<AdminHttp> admin_;
  int admin_port_ = 0;  // kept after the endpoint closes
  std::vector<std::shared_ptr<Interceptor>> interceptors_;  // add_interceptor, until start()
  // Before shards_, so destroyed after them: their calls run it until they end.
  std::unique_ptr<rpc::InterceptorChain> interceptor_chain_;
  // Before shards_, so destroyed after them: a shard's inbox may still hold a probe that
  // points at the notifier's counters.
  std::unique_ptr<SystemdNotifier> notifier_;
  std::vector<std::unique_ptr<ServerShard>> shards_;
  std::vector<std::function<void()>> stop_hooks_;

  std::mutex mu_;  // configuration and stop only; never touched by the request path
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool joining_ = false;
  bool joined_ = false;
};

}  // namespace server

Server::Server(ServerOptions options) : impl_(std::make_unique<server::ServerImpl>(std::move(options))) {}
Server::~Server() = default;

void Server::add_method(std::string path, MethodHandler handler) {
  impl_->add_method(std::move(path), std::move(handler));
}
void Server::set_fallback_handler(MethodHandler handler) { impl_->set_fallback_handler(std::move(handler)); }
void Server::on_stop_begin(std::function<void()> hook) { impl_->on_stop_begin(std::move(hook)); }
void Server::add_interceptor(std::shared_ptr<Interceptor> interceptor) {
  impl_->add_interceptor(std::move(interceptor));
}
int Server::add_insecure_port(std::string_view address) { return impl_->add_port(address, {}); }
int Server::add_secure_port(std::string_view address, const TlsCredentials& credentials) {
  return impl_->add_port(address, server::Tls::from(credentials));
}
int Server::add_listen_fd(int fd) { return impl_->add_listen_fd(fd, {}, "add_listen_fd(" + std::to_string(fd) + ")"); }
int Server::add_listen_fd(int fd, const TlsCredentials& credentials) {
  return impl_->add_listen_fd(fd, server::Tls::from(credentials), "add_listen_fd(" + std::to_string(fd) + ")");
}
size_t Server::add_listen_fds_from_systemd(std::string_view name) {
  return impl_->add_listen_fds_from_systemd(name, {});
}
size_t Server::add_listen_fds_from_systemd(std::string_view name, const TlsCredentials& credentials) {
  return impl_->add_listen_fds_from_systemd(name, server::Tls::from(credentials));
}
size_t Server::reload_tls() { return impl_->reload_tls(nullptr); }
size_t Server::set_tls_credentials(const TlsCredentials& credentials) { return impl_->reload_tls(&credentials); }
void Server::start() { impl_->start(); }
void Server::stop(std::chrono::milliseconds grace) { impl_->stop(grace.count()); }
void Server::stop() { impl_->stop(0); }
void Server::wait() { impl_->wait(); }
const ServerOptions& Server::options() const noexcept { return impl_->options(); }
unsigned Server::shard_count() const noexcept { return impl_->options().shards; }
std::string Server::metrics_text() const { return impl_->metrics_text(); }
int Server::metrics_port() const noexcept { return impl_->metrics_port(); }
ShardRef Server::shard(unsigned index) const { return impl_->shard(index); }
bool Server::run_on(unsigned index, std::function<void()> fn) const { return shard(index).post(std::move(fn)); }

}  // namespace uringrpc
