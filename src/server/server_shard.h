// ServerShard: the server's per-shard state: its loop::Shard, the accept requests on its
// listening sockets, its live connections, and its part of a shutdown (GOAWAY, grace
// timer, cancelling what is left, then letting the thread end).
#pragma once

#include <memory>
#include <vector>

#include "http2/session.h"
#include "loop/offload_pool.h"
#include "loop/shard.h"
#include "rpc/call.h"
#include "rpc/connection_calls.h"
#include "transport/connection.h"
#include "transport/tls_context.h"

namespace uringrpc::server {

struct ListenSocket {
  int fd;
  std::shared_ptr<transport::TlsContext> tls;  // null: insecure
};

struct ShardSetup {
  loop::ShardConfig loop;
  const rpc::RpcConfig* rpc = nullptr;
  http2::SessionSettings http2;
  uint64_t tls_handshake_timeout_ms = 10000;
};

class ServerShard {
 public:
  ServerShard(const ShardSetup& setup, std::vector<ListenSocket> sockets);
  ~ServerShard();

  void start();
  void join() { shard_.join(); }
  // Any thread. Starts the shutdown (once) and makes its deadline no later than deadline_ms.
  void post_shutdown(uint64_t deadline_ms);
  loop::Shard& shard() { return shard_; }

 private:
  class Acceptor final : public loop::Completion {
   public:
    Acceptor(ServerShard& owner, ListenSocket socket) : owner_(owner), socket_(std::move(socket)) {}
    void arm();
    void cancel();
    bool armed() const { return armed_; }
    void on_complete(int res, uint32_t flags) noexcept override;

   private:
    static void retry(void* self);
    ServerShard& owner_;
    ListenSocket socket_;
    bool armed_ = false;
    loop::Timer backoff_;
  };

  void on_accepted(int fd, const ListenSocket& socket);
  void begin_shutdown(uint64_t deadline_ms);
  void on_grace_expired();
  void maybe_exit();
  static void grace_timer_fired(void* self);

  ShardSetup setup_;
  loop::Shard shard_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::vector<rpc::ConnectionCalls*> connections_;
  bool shutting_down_ = false;
  bool grace_expired_ = false;
  loop::Timer grace_timer_;
};

}  // namespace uringrpc::server
