// Server: configuration, ports, start, and the one cross-shard operation: stop.
#include "uringrpc/server.h"

#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>

#include "loop/listen_address.h"
#include "loop/listener.h"
#include "loop/offload_pool.h"
#include "loop/timer_wheel.h"
#include "rpc/method_table.h"
#include "server/layer_options.h"
#include "server/server_shard.h"
#include "server/systemd_notifier.h"
#include "uringrpc/errors.h"
#include "uringrpc/systemd.h"

namespace uringrpc {
namespace server {

class ServerImpl {
 public:
  explicit ServerImpl(ServerOptions options) : options_(std::move(options)) {
    unsigned shards = options_.shards;
    if (shards == 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      shards = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
      if (shards == 0) shards = 1;
    }
    validate(options_, shards);  // before anything is allocated or bound
    options_.shards = shards;
    rpc_ = rpc_config(options_);
    rpc_.methods = &methods_;
    rpc_.active_rpcs = &active_rpcs_;
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

  void on_stop_begin(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("on_stop_begin after start()");
    if (!hook) throw std::invalid_argument("on_stop_begin: empty hook");
    stop_hooks_.push_back(std::move(hook));
  }

  int add_port(std::string_view address, std::shared_ptr<transport::TlsContext> tls) {
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

  int add_listen_fd(int fd, std::shared_ptr<transport::TlsContext> tls, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_listen_fd after start()");
    return adopt_locked(fd, std::move(tls), what);
  }

  size_t add_listen_fds_from_systemd(std::string_view name, std::shared_ptr<transport::TlsContext> tls) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_listen_fds_from_systemd after start()");
    auto passed = systemd::passed_sockets();
    std::string names;
    size_t added = 0;
    for (const auto& p : passed) {
      names += (names.empty() ? "'" : ", '") + p.name + "'";
      if (!name.empty() && p.name != name) continue;
      adopt_locked(p.fd, tls, "systemd socket '" + p.name + "' (fd " + std::to_string(p.fd) + ")");
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

  void start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("start() called twice");
    if (stopping_) throw UsageError("start() after stop()");
    // Socket activation: a server given no port serves what systemd passed.
    if (listeners_.empty() && options_.systemd.adopt_listen_fds) {
      for (const auto& p : systemd::passed_sockets()) {
        adopt_locked(p.fd, nullptr, "systemd socket '" + p.name + "' (fd " + std::to_string(p.fd) + ")");
      }
    }
    started_ = true;
    offload_ = std::make_unique<loop::OffloadPool>(options_.offload_threads);
    ShardSetup setup = ShardSetup::from(options_);
    setup.rpc = &rpc_;
    setup.loop.offload_pool = offload_.get();
    setup.open_connections = options_.listen.max_connections ? &open_connections_ : nullptr;
    for (unsigned i = 0; i < options_.shards; ++i) {
      std::vector<ListenSocket> sockets;
      for (auto& l : listeners_) {
        for (int fd : l.set.shard_fds[i]) sockets.push_back({fd, l.tls});
      }
      setup.loop.index = i;
      shards_.push_back(std::make_unique<ServerShard>(setup, std::move(sockets)));
    }
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

 private:
  int adopt_locked(int fd, std::shared_ptr<transport::TlsContext> tls, const std::string& what) {
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
        s += (seen.size() > 1 ? ", " : "") + where + (l.tls ? " (TLS)" : " (h2c)");
      }
    }
    if (seen.empty()) s += "no port";
    return s + "; " + std::to_string(options_.shards) + (options_.shards == 1 ? " shard" : " shards");
  }

  struct Listener {
    loop::ListenerSet set;
    std::shared_ptr<transport::TlsContext> tls;
  };

  ServerOptions options_;
  rpc::MethodTable methods_;
  rpc::RpcConfig rpc_;
  std::atomic<size_t> active_rpcs_{0};
  std::unique_ptr<rpc::MemoryBudget[]> budgets_;  // one per shard
  std::atomic<size_t> open_connections_{0};  // counted only under max_connections
  std::vector<Listener> listeners_;
  std::set<int> bound_ports_;
  std::unique_ptr<loop::OffloadPool> offload_;
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
int Server::add_insecure_port(std::string_view address) { return impl_->add_port(address, nullptr); }
int Server::add_secure_port(std::string_view address, const TlsCredentials& credentials) {
  return impl_->add_port(address, transport::TlsContext::create(credentials));
}
int Server::add_listen_fd(int fd) { return impl_->add_listen_fd(fd, nullptr, "add_listen_fd(" + std::to_string(fd) + ")"); }
int Server::add_listen_fd(int fd, const TlsCredentials& credentials) {
  return impl_->add_listen_fd(fd, transport::TlsContext::create(credentials), "add_listen_fd(" + std::to_string(fd) + ")");
}
size_t Server::add_listen_fds_from_systemd(std::string_view name) {
  return impl_->add_listen_fds_from_systemd(name, nullptr);
}
size_t Server::add_listen_fds_from_systemd(std::string_view name, const TlsCredentials& credentials) {
  return impl_->add_listen_fds_from_systemd(name, transport::TlsContext::create(credentials));
}
void Server::start() { impl_->start(); }
void Server::stop(std::chrono::milliseconds grace) { impl_->stop(grace.count()); }
void Server::stop() { impl_->stop(0); }
void Server::wait() { impl_->wait(); }
const ServerOptions& Server::options() const noexcept { return impl_->options(); }
unsigned Server::shard_count() const noexcept { return impl_->options().shards; }
ShardRef Server::shard(unsigned index) const { return impl_->shard(index); }
bool Server::run_on(unsigned index, std::function<void()> fn) const { return shard(index).post(std::move(fn)); }

}  // namespace uringrpc
