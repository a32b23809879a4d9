// Listening sockets for one address: bound and listening before bind_listeners returns, so
// Server::add_insecure_port / add_secure_port report conflicts at configuration time; the
// shards then multishot-accept on the fds handed to them in shard_fds.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace uringrpc::loop {

// Backlog asked of listen(); the kernel caps it at net.core.somaxconn (4096 since Linux 5.4).
inline constexpr int kListenBacklog = 4096;

// A plain aggregate: copying it copies fd numbers, not ownership. Exactly one copy may call
// close_all, and only after every shard has stopped accepting on the fds (cancel the
// multishot accepts and wait for their completions first).
struct ListenerSet {
  std::string address;                      // as the caller gave it
  int port = 0;                             // bound port (0 for unix sockets)
  std::vector<int> fds;                     // every listening fd this set owns
  std::vector<std::vector<int>> shard_fds;  // shard_fds[i]: the fds shard i accepts on
  // Unix sockets only: the file we created, removed by close_all if it is still ours.
  std::string unix_path;
  dev_t unix_dev = 0;
  ino_t unix_ino = 0;
  // Adopted (adopt_listener): a duplicate of a socket someone else holds. Never shut down
  // at stop, which would stop it listening for its holder too (systemd, the next process).
  bool adopted = false;
  // Adopted only: the socket's inode, to refuse the same socket adopted twice.
  ino_t socket_ino = 0;

  // Closes every fd (and removes our unix socket file); leaves the set empty. Idempotent.
  void close_all();
};

// Binds and listens on every address `address` resolves to (see parse_listen_address).
//   reuseport = true:  one SO_REUSEPORT socket per shard per resolved address; the kernel
//                      spreads new connections across shards.
//   reuseport = false: one socket per resolved address, shared by every shard.
//   share_port:        with reuseport, allow joining SO_REUSEPORT listeners that already
//                      hold the port (another process of ours, say). Without it a port that
//                      anyone already listens on is refused, as it is without reuseport.
// Port 0 picks one free port used by every socket of the set. Unix sockets never use
// SO_REUSEPORT; a stale socket file is replaced, a live one is refused.
// Throws std::invalid_argument for a malformed address or shards == 0, and BindError
// ("cannot bind <address>: <reason>") when binding fails. No fd survives a throw.
ListenerSet bind_listeners(std::string_view address, unsigned shards, bool reuseport,
                           bool share_port);

// Adopts a listening socket made elsewhere (systemd's socket activation, a parent
// process): checks that fd is an open stream socket of AF_INET, AF_INET6 or AF_UNIX that
// listens, and returns a set owning a duplicate of it (close-on-exec) that every shard
// accepts on: SO_REUSEPORT siblings would be this process's own sockets, and the
// connections queued on them would be lost when it exits. `what` names the socket in
// errors ("add_listen_fd(5)", "systemd socket 'grpc' (fd 3)"): std::invalid_argument
// "<what>: <what is wrong>". The caller's fd is left open and unchanged.
ListenerSet adopt_listener(int fd, unsigned shards, const std::string& what);

}  // namespace uringrpc::loop
