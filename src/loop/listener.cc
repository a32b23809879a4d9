// Creates the listening sockets behind Server::add_insecure_port / add_secure_port: one per
// shard per address with SO_REUSEPORT, or one per address shared by all shards, and finds
// bind conflicts here, at configuration time, rather than when shards start accepting.
#include "loop/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "loop/listen_address.h"
#include "uringrpc/errors.h"

namespace uringrpc::loop {
namespace {

// Port 0 is chosen by the kernel for the first socket and then bound by the others; if
// another program takes it in between, we start over with a fresh port, a few times.
constexpr int kPortZeroAttempts = 8;

// Owns an fd until it is handed to a ListenerSet, so every early return and throw closes it.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) {
      // close() may clobber errno, which callers often still have to report.
      int saved = errno;
      ::close(fd_);
      errno = saved;
    }
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// strerror is not thread-safe and other threads may be running shards; strerror_r has a GNU
// (char*) and an XSI (int) flavour, and these overloads accept either.
[[maybe_unused]] const char* strerror_result(int rc, const char* buf) {
  return rc == 0 ? buf : "Unknown error";
}
[[maybe_unused]] const char* strerror_result(const char* text, const char*) { return text; }

std::string errno_text(int err) {
  char buf[256] = {};
  return strerror_result(strerror_r(err, buf, sizeof buf), buf);
}

[[noreturn]] void bind_failed(std::string_view address, const std::string& reason) {
  throw BindError("cannot bind " + std::string(address) + ": " + reason);
}

// The first failure of a bind sequence: its errno and the endpoint it happened on.
struct Failure {
  int err = 0;
  std::string where;
};

int set_int_option(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : errno;
}

// Opens a TCP socket for `ep` and binds it. SO_REUSEADDR always: it lets a restarted server
// rebind while old connections sit in TIME_WAIT, and on Linux it never lets two listeners
// share a port (only SO_REUSEPORT does that).
int open_and_bind(const Endpoint& ep, bool reuseport, UniqueFd& out) {
  UniqueFd fd(::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return errno;
  if (int err = set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1)) return err;
  if (reuseport) {
    if (int err = set_int_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1)) return err;
  }
  if (ep.family() == AF_INET6) {
    // Set explicitly both ways: the default follows net.ipv6.bindv6only.
    if (int err = set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, ep.v6only ? 1 : 0)) {
      return err;
    }
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) return errno;
  out = std::move(fd);
  return 0;
}

int bound_port(int fd, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return errno;
  Endpoint e;
  e.addr = ss;
  e.len = len;
  port = e.port();
  return 0;
}

// Binds every endpoint at `port` without SO_REUSEPORT, holding all of them until the last is
// bound, then lets them all go. Succeeds only if nobody listens on any of the endpoints:
// a SO_REUSEPORT listener of the same user would otherwise be joined silently. A TIME_WAIT
// leftover does not fail a SO_REUSEADDR bind on Linux, so restarts still work. With port 0
// the kernel's choice for the first endpoint is written back to `port`.
// The check is advisory: another program can start listening between the probe and our own
// bind; we accept that small window rather than holding a lock shared with strangers.
bool probe_port_free(std::vector<Endpoint> eps, int& port, Failure& failure) {
  std::vector<UniqueFd> probes;
  for (auto& ep : eps) {
    ep.set_port(port);
    UniqueFd fd;
    int err = open_and_bind(ep, /*reuseport=*/false, fd);
    if (err == 0 && port == 0) err = bound_port(fd.get(), port);
    if (err != 0) {
      failure = {err, ep.to_string()};
      return false;
    }
    probes.push_back(std::move(fd));
  }
  return true;
}

// Binds and listens `copies` sockets per endpoint, copy-major: out[c * eps.size() + i].
bool bind_copies(std::vector<Endpoint> eps, int& port, unsigned copies, bool reuseport,
                 std::vector<UniqueFd>& out, Failure& failure) {
  for (unsigned c = 0; c < copies; ++c) {
    for (auto& ep : eps) {
      ep.set_port(port);
      UniqueFd fd;
      int err = open_and_bind(ep, reuseport, fd);
      if (err == 0 && port == 0) err = bound_port(fd.get(), port);
      // listen() can itself report EADDRINUSE (two SO_REUSEADDR sockets bound, one listening).
      if (err == 0 && ::listen(fd.get(), kListenBacklog) != 0) err = errno;
      if (err != 0) {
        ep.set_port(port);
        failure = {err, ep.to_string()};
        return false;
      }
      out.push_back(std::move(fd));
    }
  }
  return true;
}

// Whether this host can bind `ep` at all: without IPv6 (module off, or no ::1 on lo) gRPC
// still serves "localhost" on 127.0.0.1 and "[::]" on 0.0.0.0, and so do we.
bool family_usable(const Endpoint& ep) {
  Endpoint any_port = ep;
  any_port.set_port(0);
  UniqueFd fd;
  int err = open_and_bind(any_port, /*reuseport=*/false, fd);
  return err != EAFNOSUPPORT && err != EADDRNOTAVAIL;
}

std::vector<Endpoint> usable_endpoints(const std::vector<Endpoint>& eps) {
  if (eps.size() == 1) {
    const Endpoint& only = eps.front();
    bool dual_stack_any = only.family() == AF_INET6 && !only.v6only &&
                          IN6_IS_ADDR_UNSPECIFIED(
                              &reinterpret_cast<const sockaddr_in6*>(&only.addr)->sin6_addr);
    if (!dual_stack_any || family_usable(only)) return eps;
    Endpoint v4;
    auto* sin = reinterpret_cast<sockaddr_in*>(&v4.addr);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    v4.len = sizeof(sockaddr_in);
    v4.v6only = false;
    v4.set_port(only.port());
    return {v4};
  }
  std::vector<Endpoint> out;
  for (const auto& ep : eps) {
    if (family_usable(ep)) out.push_back(ep);
  }
  // Nothing usable: bind them all anyway so the error names a real reason.
  return out.empty() ? eps : out;
}

ListenerSet bind_tcp(const ListenAddress& la, unsigned shards, bool reuseport, bool share_port) {
  const std::vector<Endpoint> eps = usable_endpoints(la.endpoints);
  const unsigned copies = reuseport ? shards : 1;
  const int attempts = la.port == 0 ? kPortZeroAttempts : 1;
  Failure failure;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    int port = la.port;
    // Without SO_REUSEPORT the kernel refuses any conflict by itself. With it, port 0 still
    // needs the probe: the kernel could hand us a port that some other SO_REUSEPORT
    // listener of this user holds, and then we would share it.
    if (reuseport && (port == 0 || !share_port) && !probe_port_free(eps, port, failure)) {
      if (failure.err == EADDRINUSE) continue;
      break;
    }
    std::vector<UniqueFd> fds;
    if (!bind_copies(eps, port, copies, reuseport, fds, failure)) {
      if (failure.err == EADDRINUSE) continue;
      break;
    }

    ListenerSet set;
    set.address = la.text;
    set.port = port;
    set.fds.reserve(fds.size());
    for (auto& fd : fds) set.fds.push_back(fd.get());
    set.shard_fds.resize(shards);
    for (unsigned s = 0; s < shards; ++s) {
      if (reuseport) {
        auto first = set.fds.begin() + static_cast<std::ptrdiff_t>(s * eps.size());
        set.shard_fds[s].assign(first, first + static_cast<std::ptrdiff_t>(eps.size()));
      } else {
        set.shard_fds[s] = set.fds;
      }
    }
    // Only now, with every allocation done, does the set take ownership.
    for (auto& fd : fds) fd.release();
    return set;
  }
  bind_failed(la.text, errno_text(failure.err) + " (at " + failure.where + ")");
}

// A unix socket path outlives its listener, so an existing file is either a live server
// (refuse), a leftover of one that died (replace), or not ours to touch (refuse).
// Between the liveness check and our bind another server could appear; the window is small
// and the loser gets EADDRINUSE from bind.
ListenerSet bind_unix(const ListenAddress& la, unsigned shards) {
  const Endpoint& ep = la.endpoints.front();
  const std::string& path = la.unix_path;
  const auto* sa = reinterpret_cast<const sockaddr*>(&ep.addr);

  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) bind_failed(la.text, "path exists and is not a socket");
    // Non-blocking, so a live server with a full backlog answers EAGAIN instead of stalling us.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (probe.get() < 0) bind_failed(la.text, errno_text(errno));
    if (::connect(probe.get(), sa, ep.len) == 0 || errno == EAGAIN || errno == EINPROGRESS) {
      bind_failed(la.text, errno_text(EADDRINUSE) + " (a server accepts connections there)");
    }
    if (errno != ECONNREFUSED) bind_failed(la.text, errno_text(errno));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      bind_failed(la.text, "cannot remove stale socket file: " + errno_text(errno));
    }
  } else if (errno != ENOENT) {
    bind_failed(la.text, errno_text(errno));
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) bind_failed(la.text, errno_text(errno));
  if (::bind(fd.get(), sa, ep.len) != 0) bind_failed(la.text, errno_text(errno));
  if (::lstat(path.c_str(), &st) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    bind_failed(la.text, errno_text(err));
  }
  if (::listen(fd.get(), kListenBacklog) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    bind_failed(la.text, errno_text(err));
  }

  ListenerSet set;
  set.address = la.text;
  set.port = 0;
  set.unix_path = path;
  set.unix_dev = st.st_dev;
  set.unix_ino = st.st_ino;
  set.fds = {fd.get()};
  set.shard_fds.assign(shards, set.fds);
  fd.release();
  return set;
}

}  // namespace

void ListenerSet::close_all() {
  for (int fd : fds) ::close(fd);
  fds.clear();
  shard_fds.clear();
  if (!unix_path.empty()) {
    // Only remove the file if it is still the socket we bound: another server may have
    // replaced it since (after deciding ours was stale), or the cwd may have changed.
    struct stat st{};
    if (::lstat(unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == unix_dev &&
        st.st_ino == unix_ino) {
      ::unlink(unix_path.c_str());
    }
    unix_path.clear();
  }
}

ListenerSet bind_listeners(std::string_view address, unsigned shards, bool reuseport,
                           bool share_port) {
  if (shards == 0) throw std::invalid_argument("bind_listeners: shards must be at least 1");
  ListenAddress la = parse_listen_address(address);
  if (la.is_unix) return bind_unix(la, shards);
  return bind_tcp(la, shards, reuseport, share_port);
}

}  // namespace uringrpc::loop
