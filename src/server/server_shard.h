// ServerShard: the server's per-shard state: its loop::Shard, the accept requests on its
// listening sockets (with the server-wide connection cap and the back-off when descriptors
// run out), its live connections, and its part of a shutdown (GOAWAY, grace timer,
// cancelling what is left, then letting the thread end).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "http2/session.h"
#include "loop/offload_pool.h"
#include "loop/shard.h"
#include "rpc/call.h"
#include "rpc/connection_calls.h"
#include "transport/connection.h"
#include "transport/tls_context_slot.h"
#include "uringrpc/server.h"

namespace uringrpc::server {

struct ListenSocket {
  int fd;
  transport::TlsContextReader tls;  // empty: insecure
  // Other shards accept on this fd too (no SO_REUSEPORT, or adopted): with direct
  // descriptors a shard whose table is full leaves its connections to them.
  bool shared = false;
};

// What every shard of a server is set up with. from() takes the options (layer_options.cc);
// the server then wires up the shared objects (rpc, open_connections, the offload pool)
// and each shard's index.
struct ShardSetup {
  static ShardSetup from(const ServerOptions& options);

  loop::ShardConfig loop;
  const rpc::RpcConfig* rpc = nullptr;
  http2::SessionSettings http2;
  uint64_t tls_handshake_timeout_ms;
  // ServerOptions::listen.max_connections (0: no cap) and the count of open connections,
  // shared by every shard of the server (null when there is no cap).
  size_t max_connections;
  std::atomic<size_t>* open_connections = nullptr;
  // ListenOptions::direct_descriptors: connections are accepted into the shard ring's
  // table (loop.direct_slots slots, set by Server::start from direct_slots_per_shard).
  bool direct = false;
  // loop.pin_shards_to_cpus: the CPU this shard's thread pins itself to; -1: not pinned.
  int cpu = -1;
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
  // Accepts on one listening socket. Without a connection cap: one multishot accept.
  // With a cap: a single-shot readiness poll, then non-blocking accepts while the
  // server-wide count has room (see try_accepts() for why). Direct descriptors:
  // single-shot accepts into the ring's table, each with its own peer address buffer (a
  // multishot accept writes every peer's address into the same one): kDirectAccepts armed
  // at once, or with a cap one after the readiness poll that does not wait (see
  // accept_direct()).
  class Acceptor final : public loop::Completion {
   public:
    Acceptor(ServerShard& owner, ListenSocket socket);
    // Starts accepting unless shutting down, already armed, backing off or (capped) paused.
    void arm();
    void cancel();
    bool armed() const { return armed_ || direct_armed_ > 0; }
    bool paused() const { return paused_; }
    // Capped mode: a slot may have freed up; try again.
    void resume();
    // Direct mode, shared listener: a slot of this shard's table freed up.
    void table_has_room();
    void on_complete(int res, uint32_t flags) noexcept override;

   private:
    static void retry(void* self);
    void try_accepts();
    // One accept of a direct socket, with the address of the peer it accepted.
    struct DirectAccept final : loop::Completion {
      Acceptor* acceptor = nullptr;
      bool armed = false;
      sockaddr_storage peer{};
      socklen_t peer_len = 0;
      void on_complete(int res, uint32_t) noexcept override { acceptor->on_direct_accept(*this, res); }
    };
    // Accepts armed at once per listener without a cap: one alone would leave each new
    // connection waiting a loop turn for the next accept (a connection storm ran at half
    // the multishot accept's rate); 16 of them are ~2.5 KiB per listener and shard.
    static constexpr unsigned kDirectAccepts = 16;
    void submit_direct(DirectAccept& op, bool dont_wait);
    void accept_direct(bool after_poll);
    void on_direct_accept(DirectAccept& op, int res);
    // Out of descriptors or memory: retry after a growing delay.
    void back_off(int err);
    ServerShard& owner_;
    ListenSocket socket_;
    bool armed_ = false;
    bool paused_ = false;  // capped and at the cap: nothing armed until a slot frees up
    uint64_t backoff_ms_ = 0;
    loop::Timer backoff_;
    bool table_full_ = false;  // shared listener: not armed while the shard's table is full
    std::unique_ptr<DirectAccept[]> direct_;  // direct mode: kDirectAccepts (capped: 1 used)
    unsigned direct_armed_ = 0;
  };

  bool capped() const { return setup_.max_connections != 0; }
  // Direct mode: every slot of the ring's table may be in use (the connections in the list
  // are at least those holding a slot: a slot's close is submitted before its connection
  // leaves the list).
  bool table_full() { return setup_.direct && connections_.size() >= shard_.ring().direct_slots(); }
  // Takes one slot of the server-wide cap; false at the cap.
  bool reserve_connection();
  // Gives a slot back and lets this shard's paused acceptors try again.
  void release_connection();
  void pause_accepting();
  static void resume_timer_fired(void* self);
  // One log line when accepting starts failing for lack of descriptors or memory, one
  // (info) when it works again; the failures in between are only counted.
  void accept_failed(int err);
  void accept_succeeded();

  // Under max_connections (capped()) every connection holds a slot of the cap, released
  // when it is gone.
  void on_accepted(int fd, ListenSocket& socket, const sockaddr_storage* peer = nullptr);
  // Direct mode: the table was full and the kernel closed the connection it accepted.
  void refused();
  void close_accepted(int fd);
  // ConnectionCalls' on_gone: the connection and its calls are freed.
  static void connection_gone(void* self, uint32_t list_slot);
  void remove_connection(uint32_t list_slot);
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
  loop::Timer resume_timer_;  // armed while an acceptor is paused at the cap
  bool accept_failing_ = false;
  uint64_t accept_failures_ = 0;
};

}  // namespace uringrpc::server
