// adopt_listener (listener.h): a listening socket made elsewhere, checked and duplicated so
// the shards can accept on it. Called at configuration time by Server::add_listen_fd and
// add_listen_fds_from_systemd, never on a shard.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "loop/listen_address.h"
#include "loop/listener.h"

namespace uringrpc::loop {
namespace {

[[noreturn]] void refuse(const std::string& what, const std::string& reason) {
  throw std::invalid_argument(what + ": " + reason);
}

int int_option(int fd, int level, int name, const std::string& what, const char* option) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0) {
    if (errno == ENOTSOCK) refuse(what, "not a socket");
    refuse(what, std::string("getsockopt ") + option + " failed (errno " + std::to_string(errno) + ")");
  }
  return value;
}

std::string family_name(int family) {
  switch (family) {
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_UNIX: return "AF_UNIX";
    case AF_NETLINK: return "AF_NETLINK";
    case AF_PACKET: return "AF_PACKET";
    case AF_VSOCK: return "AF_VSOCK";
    default: return "family " + std::to_string(family);
  }
}

}  // namespace

ListenerSet adopt_listener(int fd, unsigned shards, const std::string& what) {
  if (shards == 0) throw std::invalid_argument("adopt_listener: shards must be at least 1");
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) refuse(what, "not an open file descriptor");
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) refuse(what, "not a socket");
  const int family = int_option(fd, SOL_SOCKET, SO_DOMAIN, what, "SO_DOMAIN");
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
    refuse(what, "a " + family_name(family) + " socket; gRPC needs AF_INET, AF_INET6 or AF_UNIX");
  }
  const int type = int_option(fd, SOL_SOCKET, SO_TYPE, what, "SO_TYPE");
  if (type != SOCK_STREAM) {
    refuse(what, std::string("a ") + (type == SOCK_DGRAM ? "datagram (SOCK_DGRAM)" : type == SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "non-stream") +
                     " socket; gRPC needs a stream socket (ListenStream= in a .socket unit)");
  }
  if (!int_option(fd, SOL_SOCKET, SO_ACCEPTCONN, what, "SO_ACCEPTCONN")) {
    refuse(what, "a stream socket that is not listening (listen() was not called; Accept=yes passes "
                 "connections, not listeners)");
  }

  ListenerSet set;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    refuse(what, "getsockname failed (errno " + std::to_string(errno) + ")");
  }
  Endpoint ep;
  ep.addr = ss;
  ep.len = len;
  set.port = ep.port();
  set.address = ep.to_string() + " (" + what + ")";
  // Ours to close: the caller (or sd_listen_fds's numbering) keeps its own descriptor.
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) refuse(what, "cannot duplicate it (errno " + std::to_string(errno) + ")");
  set.fds = {dup};
  set.shard_fds.assign(shards, set.fds);
  set.adopted = true;
  set.socket_ino = st.st_ino;
  return set;
}

}  // namespace uringrpc::loop
