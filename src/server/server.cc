// Server: configuration, ports, start, and the one cross-shard operation: stop.
#include "uringrpc/server.h"

#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>

#include "loop/listener.h"
#include "loop/offload_pool.h"
#include "loop/timer_wheel.h"
#include "rpc/method_table.h"
#include "server/server_shard.h"
#include "uringrpc/errors.h"

namespace uringrpc {
namespace server {

class ServerImpl {
 public:
  explicit ServerImpl(ServerOptions options) : options_(std::move(options)) {
    if (options_.shards == 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      options_.shards = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
      if (options_.shards == 0) options_.shards = 1;
    }
    rpc_.methods = &methods_;
    rpc_.max_receive_message_size = options_.max_receive_message_size;
    rpc_.write_watermark = options_.write_watermark_bytes;
    rpc_.read_watermark = options_.stream_window_bytes;
    rpc_.max_concurrent_rpcs = options_.max_concurrent_rpcs;
    rpc_.active_rpcs = &active_rpcs_;
    rpc_.max_connection_idle_ms = ms(options_.max_connection_idle);
    rpc_.max_connection_age_ms = ms(options_.max_connection_age);
    rpc_.max_connection_age_grace_ms = ms(options_.max_connection_age_grace);
    rpc_.stalled_stream_timeout_ms = ms(options_.stalled_stream_timeout);
    if (options_.max_buffered_bytes > 0) {
      budgets_ = std::make_unique<rpc::MemoryBudget[]>(options_.shards);
      for (unsigned i = 0; i < options_.shards; ++i) budgets_[i].limit = options_.max_buffered_bytes / options_.shards;
      rpc_.budgets = budgets_.get();
    }
  }

  static uint64_t ms(std::chrono::milliseconds d) { return static_cast<uint64_t>(std::max<int64_t>(d.count(), 0)); }

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

  int add_port(std::string_view address, std::shared_ptr<transport::TlsContext> tls) {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("add_port after start()");
    loop::ListenerSet set =
        loop::bind_listeners(address, options_.shards, options_.so_reuseport, options_.share_port);
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

  void start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) throw UsageError("start() called twice");
    if (stopping_) throw UsageError("start() after stop()");
    started_ = true;
    offload_ = std::make_unique<loop::OffloadPool>(options_.offload_threads);
    ShardSetup setup;
    setup.rpc = &rpc_;
    setup.http2.max_concurrent_streams = options_.max_concurrent_streams;
    setup.http2.stream_window_bytes = options_.stream_window_bytes;
    setup.http2.connection_window_bytes = options_.connection_window_bytes;
    setup.http2.max_header_list_bytes = options_.max_header_list_bytes;
    setup.http2.max_ping_strikes = options_.max_ping_strikes;
    setup.http2.min_ping_interval_ms = ms(options_.min_client_ping_interval);
    setup.http2.min_ping_interval_idle_ms = ms(options_.min_client_ping_interval_idle);
    setup.http2.keepalive_time_ms = ms(options_.keepalive_time);
    setup.http2.keepalive_timeout_ms = ms(options_.keepalive_timeout);
    setup.http2.max_empty_frames = options_.max_empty_frames;
    setup.http2.reset_burst = options_.reset_burst;
    setup.http2.reset_refill_per_second = options_.reset_refill_per_second;
    setup.http2.max_queued_output_frames = options_.max_queued_output_frames;
    setup.http2.max_queued_output_bytes = options_.max_queued_output_bytes;
    setup.tls_handshake_timeout_ms = static_cast<uint64_t>(options_.handshake_timeout.count());
    setup.loop.recv_buffer_size = options_.recv_buffer_size;
    setup.loop.recv_buffer_count = options_.recv_buffer_count;
    setup.loop.batch_wait_usec = static_cast<unsigned>(options_.completion_batch_wait.count());
    setup.loop.batch_wait_events = options_.completion_batch_size;
    setup.loop.offload_pool = offload_.get();
    setup.max_connections = options_.max_connections;
    setup.open_connections = options_.max_connections ? &open_connections_ : nullptr;
    for (unsigned i = 0; i < options_.shards; ++i) {
      std::vector<ListenSocket> sockets;
      for (auto& l : listeners_) {
        for (int fd : l.set.shard_fds[i]) sockets.push_back({fd, l.tls});
      }
      setup.loop.index = i;
      shards_.push_back(std::make_unique<ServerShard>(setup, std::move(sockets)));
    }
    for (auto& s : shards_) s->start();
  }

  void stop(int64_t grace_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t deadline = loop::TimerWheel::monotonic_now_ms() + static_cast<uint64_t>(std::max<int64_t>(grace_ms, 0));
    if (!stopping_) {
      stopping_ = true;
      // Refuse new connections now: a listening socket shut down leaves LISTEN at once,
      // while its descriptor stays valid until the shards have cancelled their accepts.
      for (auto& l : listeners_) {
        for (int fd : l.set.fds) ::shutdown(fd, SHUT_RDWR);
      }
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
        joined_ = true;
        cv_.notify_all();
      } else {
        cv_.wait(lock);
      }
    }
  }

 public:
  const ServerOptions& options() const { return options_; }

 private:
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
  std::vector<std::unique_ptr<ServerShard>> shards_;

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
int Server::add_insecure_port(std::string_view address) { return impl_->add_port(address, nullptr); }
int Server::add_secure_port(std::string_view address, const TlsCredentials& credentials) {
  return impl_->add_port(address, transport::TlsContext::create(credentials));
}
void Server::start() { impl_->start(); }
void Server::stop(std::chrono::milliseconds grace) { impl_->stop(grace.count()); }
void Server::stop() { impl_->stop(0); }
void Server::wait() { impl_->wait(); }
const ServerOptions& Server::options() const noexcept { return impl_->options(); }
unsigned Server::shard_count() const noexcept { return impl_->options().shards; }

}  // namespace uringrpc
