// Unit tests for listening-address parsing and listener creation (src/loop/listen_address.h,
// src/loop/listener.h): the forms Server::add_insecure_port accepts, port 0, SO_REUSEPORT per
// shard versus one shared listener, bind conflicts, unix sockets, and no fd leaks on failure.
// Loopback addresses only.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "loop/listen_address.h"
#include "loop/listener.h"
#include "uringrpc/errors.h"

namespace uringrpc::loop {
namespace {

// ---------------------------------------------------------------- helpers

const sockaddr_in6& v6(const Endpoint& e) {
  return *reinterpret_cast<const sockaddr_in6*>(&e.addr);
}
const sockaddr_in& v4(const Endpoint& e) { return *reinterpret_cast<const sockaddr_in*>(&e.addr); }

int count_open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

int int_option(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0) << strerror(errno);
  return v;
}

int socket_family(int fd) { return int_option(fd, SOL_SOCKET, SO_DOMAIN); }

int local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

// Blocking connect to a loopback TCP port; returns the client fd or -1.
int tcp_connect(int family, int port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc;
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  } else {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(static_cast<uint16_t>(port));
    sin6.sin6_addr = in6addr_loopback;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6);
  }
  if (rc != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int unix_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A listener made outside bind_listeners, as another program would: 127.0.0.1:port.
int outside_listener(int port, bool reuseport) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0) << strerror(errno);
  EXPECT_EQ(listen(fd, 16), 0);
  return fd;
}

// Closes the set at scope exit, so a failing assertion does not leak into later tests.
struct Guard {
  ListenerSet set;
  ~Guard() { set.close_all(); }
};

// A port that was free a moment ago (for tests that need a fixed port number).
int free_port() {
  Guard g{bind_listeners("127.0.0.1:0", 1, false, false)};
  return g.set.port;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/uringrpc-listener-XXXXXX";
    char* p = mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "/tmp";
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

template <typename F>
std::string bind_error_message(F&& f) {
  try {
    f();
  } catch (const BindError& e) {
    return e.what();
  }
  return "<no BindError>";
}

// ---------------------------------------------------------------- parsing

TEST(ListenAddress, BracketedIpv6WildcardIsOneDualStackEndpoint) {
  auto la = parse_listen_address("[::]:0");
  EXPECT_FALSE(la.is_unix);
  EXPECT_EQ(la.text, "[::]:0");
  EXPECT_EQ(la.port, 0);
  ASSERT_EQ(la.endpoints.size(), 1u);
  EXPECT_EQ(la.endpoints[0].family(), AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&v6(la.endpoints[0]).sin6_addr));
  EXPECT_FALSE(la.endpoints[0].v6only);
  EXPECT_EQ(la.endpoints[0].to_string(), "[::]:0");
}

TEST(ListenAddress, BracketedIpv6WildcardWithPort) {
  auto la = parse_listen_address("[::]:50051");
  ASSERT_EQ(la.endpoints.size(), 1u);
  EXPECT_EQ(la.port, 50051);
  EXPECT_EQ(la.endpoints[0].port(), 50051);
  EXPECT_FALSE(la.endpoints[0].v6only);
}

TEST(ListenAddress, BracketedIpv6LoopbackIsV6Only) {
  auto la = parse_listen_address("[::1]:8080");
  ASSERT_EQ(la.endpoints.size(), 1u);
  EXPECT_EQ(la.endpoints[0].family(), AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&v6(la.endpoints[0]).sin6_addr));
  EXPECT_TRUE(la.endpoints[0].v6only);
  EXPECT_EQ(la.endpoints[0].port(), 8080);
  EXPECT_EQ(la.endpoints[0].to_string(), "[::1]:8080");
}

TEST(ListenAddress, Ipv4WildcardAndLoopback) {
  auto any = parse_listen_address("0.0.0.0:50051");
  ASSERT_EQ(any.endpoints.size(), 1u);
  EXPECT_EQ(any.endpoints[0].family(), AF_INET);
  EXPECT_EQ(v4(any.endpoints[0]).sin_addr.s_addr, htonl(INADDR_ANY));
  EXPECT_EQ(any.endpoints[0].port(), 50051);

  auto lo = parse_listen_address("127.0.0.1:65535");
  ASSERT_EQ(lo.endpoints.size(), 1u);
  EXPECT_EQ(v4(lo.endpoints[0]).sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(lo.port, 65535);
  EXPECT_EQ(lo.endpoints[0].to_string(), "127.0.0.1:65535");
}

TEST(ListenAddress, LocalhostMeansIpv6AndIpv4LoopbackWithoutLookup) {
  for (const char* text : {"localhost:1234", "LocalHost:1234"}) {
    auto la = parse_listen_address(text);
    ASSERT_EQ(la.endpoints.size(), 2u) << text;
    EXPECT_EQ(la.endpoints[0].family(), AF_INET6);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&v6(la.endpoints[0]).sin6_addr));
    EXPECT_TRUE(la.endpoints[0].v6only);
    EXPECT_EQ(la.endpoints[1].family(), AF_INET);
    EXPECT_EQ(v4(la.endpoints[1]).sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    for (const auto& e : la.endpoints) EXPECT_EQ(e.port(), 1234);
  }
}

TEST(ListenAddress, UnixAbsoluteRelativeAndTripleSlashPaths) {
  auto abs = parse_listen_address("unix:/run/x.sock");
  EXPECT_TRUE(abs.is_unix);
  EXPECT_EQ(abs.unix_path, "/run/x.sock");
  EXPECT_EQ(abs.port, 0);
  ASSERT_EQ(abs.endpoints.size(), 1u);
  EXPECT_EQ(abs.endpoints[0].family(), AF_UNIX);
  EXPECT_EQ(abs.endpoints[0].to_string(), "unix:/run/x.sock");

  auto rel = parse_listen_address("unix:relative/x.sock");
  EXPECT_EQ(rel.unix_path, "relative/x.sock");

  auto uri = parse_listen_address("unix:///run/y.sock");
  EXPECT_EQ(uri.unix_path, "/run/y.sock");
}

TEST(ListenAddress, MalformedAddressesThrowInvalidArgument) {
  for (const char* text : {
           "",                   // nothing
           "localhost",          // no port
           "localhost:",         // empty port
           ":50051",             // no host
           "[::1]",              // no port
           "[::1]:",             // empty port
           "[::1]50051",         // no colon
           "[::1:50051",         // no ']'
           "[::g]:80",           // bad IPv6
           "[127.0.0.1]:80",     // IPv4 in brackets
           "::1:50051",          // unbracketed IPv6
           "localhost:65536",    // port too large
           "localhost:99999999999999999999",
           "localhost:http",     // not numeric
           "localhost:-1",
           "localhost:+80",
           "localhost: 80",
           "localhost:80 ",
           "localhost:0x50",
           "256.0.0.1:80",       // bad dotted quad
           "1.2.3:80",
           "127.1:80",
           "bad_host!:80",       // bad hostname character
           "unix:",              // empty path
           "unix://relative",    // unix:// needs an absolute path
       }) {
    EXPECT_THROW(parse_listen_address(text), std::invalid_argument) << "\"" << text << "\"";
  }
}

TEST(ListenAddress, InvalidArgumentMessageNamesTheAddress) {
  try {
    parse_listen_address("localhost:70000");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("localhost:70000"), std::string::npos) << e.what();
  }
}

TEST(ListenAddress, UnixPathLongerThanSunPathThrowsInvalidArgument) {
  sockaddr_un sun{};
  std::string longest(sizeof sun.sun_path - 1, 'a');
  EXPECT_NO_THROW(parse_listen_address("unix:" + longest));
  EXPECT_THROW(parse_listen_address("unix:" + longest + "a"), std::invalid_argument);
}

// ---------------------------------------------------------------- TCP listeners

TEST(Listener, PortZeroPicksAFreePortThatAcceptsConnections) {
  Guard g{bind_listeners("127.0.0.1:0", 1, false, false)};
  EXPECT_EQ(g.set.address, "127.0.0.1:0");
  EXPECT_GT(g.set.port, 0);
  ASSERT_EQ(g.set.fds.size(), 1u);
  EXPECT_EQ(local_port(g.set.fds[0]), g.set.port);
  int c = tcp_connect(AF_INET, g.set.port);
  EXPECT_GE(c, 0) << strerror(errno);
  if (c >= 0) close(c);
}

TEST(Listener, LocalhostListensOnIpv6AndIpv4WithOnePort) {
  Guard g{bind_listeners("localhost:0", 1, false, false)};
  ASSERT_EQ(g.set.fds.size(), 2u);
  std::set<int> families;
  for (int fd : g.set.fds) {
    families.insert(socket_family(fd));
    EXPECT_EQ(local_port(fd), g.set.port);
  }
  EXPECT_EQ(families, (std::set<int>{AF_INET, AF_INET6}));
  for (int family : {AF_INET, AF_INET6}) {
    int c = tcp_connect(family, g.set.port);
    EXPECT_GE(c, 0) << family;
    if (c >= 0) close(c);
  }
}

TEST(Listener, Ipv6LoopbackSocketIsV6Only) {
  Guard g{bind_listeners("[::1]:0", 1, false, false)};
  ASSERT_EQ(g.set.fds.size(), 1u);
  EXPECT_EQ(int_option(g.set.fds[0], IPPROTO_IPV6, IPV6_V6ONLY), 1);
}

TEST(Listener, ReuseportGivesEachShardItsOwnSocketPerAddress) {
  Guard g{bind_listeners("localhost:0", 2, true, false)};
  ASSERT_EQ(g.set.fds.size(), 4u);
  ASSERT_EQ(g.set.shard_fds.size(), 2u);
  std::set<int> distinct(g.set.fds.begin(), g.set.fds.end());
  EXPECT_EQ(distinct.size(), 4u);
  std::set<int> from_shards;
  for (const auto& shard : g.set.shard_fds) {
    ASSERT_EQ(shard.size(), 2u);
    std::set<int> families;
    for (int fd : shard) {
      from_shards.insert(fd);
      families.insert(socket_family(fd));
    }
    EXPECT_EQ(families, (std::set<int>{AF_INET, AF_INET6}));
  }
  EXPECT_EQ(from_shards, distinct);
  for (int fd : g.set.fds) {
    EXPECT_EQ(local_port(fd), g.set.port);
    EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_REUSEPORT), 1);
    EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_REUSEADDR), 1);
    EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  }
}

TEST(Listener, SharedListenerGivesEveryShardTheSameSockets) {
  Guard g{bind_listeners("localhost:0", 3, false, false)};
  ASSERT_EQ(g.set.fds.size(), 2u);
  ASSERT_EQ(g.set.shard_fds.size(), 3u);
  for (const auto& shard : g.set.shard_fds) EXPECT_EQ(shard, g.set.fds);
  for (int fd : g.set.fds) {
    EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_REUSEPORT), 0);
    EXPECT_EQ(int_option(fd, SOL_SOCKET, SO_REUSEADDR), 1);
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  }
}

TEST(Listener, ZeroShardsIsInvalidArgument) {
  EXPECT_THROW(bind_listeners("127.0.0.1:0", 0, true, false), std::invalid_argument);
}

TEST(Listener, MalformedAddressIsInvalidArgumentNotBindError) {
  EXPECT_THROW(bind_listeners("localhost:65536", 1, false, false), std::invalid_argument);
}

TEST(Listener, SecondBindOfSameAddressWithoutReuseportThrowsBindError) {
  Guard first{bind_listeners("localhost:0", 1, false, false)};
  std::string again = "localhost:" + std::to_string(first.set.port);
  EXPECT_THROW(bind_listeners(again, 1, false, false), BindError);
}

TEST(Listener, SecondBindOfSameAddressWithReuseportThrowsBindError) {
  Guard first{bind_listeners("localhost:0", 2, true, false)};
  std::string again = "localhost:" + std::to_string(first.set.port);
  EXPECT_THROW(bind_listeners(again, 2, true, false), BindError);
  // Across modes too.
  EXPECT_THROW(bind_listeners(again, 1, false, false), BindError);
  Guard plain{bind_listeners("127.0.0.1:0", 1, false, false)};
  EXPECT_THROW(bind_listeners("127.0.0.1:" + std::to_string(plain.set.port), 2, true, false),
               BindError);
}

TEST(Listener, OverlapOnOneOfSeveralAddressesIsAConflict) {
  // Someone holds 127.0.0.1:N only; "localhost:N" must not quietly serve just ::1.
  Guard v4only{bind_listeners("127.0.0.1:0", 1, false, false)};
  std::string both = "localhost:" + std::to_string(v4only.set.port);
  EXPECT_THROW(bind_listeners(both, 1, false, false), BindError);
  EXPECT_THROW(bind_listeners(both, 2, true, false), BindError);
}

TEST(Listener, OutsidePlainListenerMakesReuseportBindThrow) {
  int port = free_port();
  int outside = outside_listener(port, /*reuseport=*/false);
  std::string addr = "127.0.0.1:" + std::to_string(port);
  EXPECT_THROW(bind_listeners(addr, 2, true, false), BindError);
  // share_port cannot join a socket that never agreed to share.
  EXPECT_THROW(bind_listeners(addr, 2, true, true), BindError);
  close(outside);
}

TEST(Listener, OutsideReuseportListenerIsRefusedUnlessSharePort) {
  int port = free_port();
  int outside = outside_listener(port, /*reuseport=*/true);
  std::string addr = "127.0.0.1:" + std::to_string(port);
  // The kernel alone would let this through; we refuse to share by surprise.
  EXPECT_THROW(bind_listeners(addr, 2, true, false), BindError);
  {
    Guard shared{bind_listeners(addr, 2, true, true)};
    EXPECT_EQ(shared.set.port, port);
    EXPECT_EQ(shared.set.fds.size(), 2u);
  }
  close(outside);
}

TEST(Listener, BindErrorMessageNamesAddressAndReason) {
  Guard first{bind_listeners("127.0.0.1:0", 1, false, false)};
  std::string addr = "127.0.0.1:" + std::to_string(first.set.port);
  for (bool reuseport : {false, true}) {
    std::string msg = bind_error_message([&] { bind_listeners(addr, 1, reuseport, false); });
    EXPECT_EQ(msg.rfind("cannot bind " + addr + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(strerror(EADDRINUSE)), std::string::npos) << msg;
  }
}

TEST(Listener, PortFreedByCloseAllCanBeReboundDespiteTimeWait) {
  Guard first{bind_listeners("127.0.0.1:0", 1, false, false)};
  int port = first.set.port;
  // The server side closes first, so the accepted connection (local port = port) lingers
  // in TIME_WAIT, as after a server restart.
  int client = tcp_connect(AF_INET, port);
  ASSERT_GE(client, 0);
  int accepted = accept4(first.set.fds[0], nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  close(accepted);
  char byte;
  EXPECT_EQ(read(client, &byte, 1), 0);  // wait for the FIN
  close(client);
  first.set.close_all();

  std::string addr = "127.0.0.1:" + std::to_string(port);
  { Guard again{bind_listeners(addr, 2, true, false)}; }
  { Guard again{bind_listeners(addr, 1, false, false)}; }
}

TEST(Listener, CloseAllClosesEveryFdAndIsIdempotent) {
  auto set = bind_listeners("localhost:0", 2, true, false);
  auto fds = set.fds;
  set.close_all();
  EXPECT_TRUE(set.fds.empty());
  EXPECT_TRUE(set.shard_fds.empty());
  for (int fd : fds) EXPECT_EQ(fcntl(fd, F_GETFD), -1);
  set.close_all();
}

TEST(Listener, FailedBindsLeakNoFds) {
  TempDir dir;
  Guard held{bind_listeners("localhost:0", 2, true, false)};
  std::string taken = "localhost:" + std::to_string(held.set.port);
  std::string file = dir.file("plain");
  std::ofstream(file) << "x";
  Guard live{bind_listeners("unix:" + dir.file("live.sock"), 1, false, false)};

  int before = count_open_fds();
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(bind_listeners(taken, 4, true, false), BindError);
    EXPECT_THROW(bind_listeners(taken, 4, false, false), BindError);
    EXPECT_THROW(bind_listeners("unix:" + file, 1, false, false), BindError);
    EXPECT_THROW(bind_listeners("unix:" + dir.file("live.sock"), 1, false, false), BindError);
    EXPECT_THROW(bind_listeners("unix:" + dir.file("no/such/dir.sock"), 1, false, false),
                 BindError);
  }
  EXPECT_EQ(count_open_fds(), before);
}

// ---------------------------------------------------------------- unix sockets

TEST(Listener, UnixSocketOnFreshPathIsSharedByEveryShard) {
  TempDir dir;
  std::string path = dir.file("fresh.sock");
  {
    Guard g{bind_listeners("unix:" + path, 3, /*reuseport=*/true, false)};
    EXPECT_EQ(g.set.port, 0);
    ASSERT_EQ(g.set.fds.size(), 1u);
    ASSERT_EQ(g.set.shard_fds.size(), 3u);
    for (const auto& shard : g.set.shard_fds) EXPECT_EQ(shard, g.set.fds);
    EXPECT_EQ(int_option(g.set.fds[0], SOL_SOCKET, SO_REUSEPORT), 0);
    EXPECT_TRUE(fcntl(g.set.fds[0], F_GETFD) & FD_CLOEXEC);
    int c = unix_connect(path);
    EXPECT_GE(c, 0) << strerror(errno);
    if (c >= 0) close(c);
  }
  struct stat st{};
  EXPECT_NE(lstat(path.c_str(), &st), 0) << "close_all should remove the socket file";
}

TEST(Listener, UnixSocketStaleFileIsReplaced) {
  TempDir dir;
  std::string path = dir.file("stale.sock");
  // A server that died without unlinking its socket.
  int dead = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
  ASSERT_EQ(bind(dead, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
  ASSERT_EQ(listen(dead, 1), 0);
  close(dead);

  Guard g{bind_listeners("unix:" + path, 1, false, false)};
  int c = unix_connect(path);
  EXPECT_GE(c, 0) << strerror(errno);
  if (c >= 0) close(c);
}

TEST(Listener, UnixSocketWithLiveServerIsRefused) {
  TempDir dir;
  std::string path = dir.file("live.sock");
  Guard first{bind_listeners("unix:" + path, 1, false, false)};
  std::string msg =
      bind_error_message([&] { bind_listeners("unix:" + path, 1, false, false); });
  EXPECT_EQ(msg.rfind("cannot bind unix:" + path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(strerror(EADDRINUSE)), std::string::npos) << msg;
  // The refused attempt must not have removed the live server's file.
  int c = unix_connect(path);
  EXPECT_GE(c, 0);
  if (c >= 0) close(c);
}

TEST(Listener, UnixPathHoldingARegularFileIsRefusedAndKept) {
  TempDir dir;
  std::string path = dir.file("not-a-socket");
  std::ofstream(path) << "keep me";
  EXPECT_THROW(bind_listeners("unix:" + path, 1, false, false), BindError);
  struct stat st{};
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(Listener, UnixRelativePathBindsRelativeToCwd) {
  TempDir dir;
  char old_cwd[4096];
  ASSERT_NE(getcwd(old_cwd, sizeof old_cwd), nullptr);
  ASSERT_EQ(chdir(dir.file("").c_str()), 0);
  {
    Guard g{bind_listeners("unix:rel.sock", 1, false, false)};
    struct stat st{};
    EXPECT_EQ(lstat("rel.sock", &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
  }
  ASSERT_EQ(chdir(old_cwd), 0);
}

TEST(Listener, CloseAllLeavesAReplacementSocketFileAlone) {
  TempDir dir;
  std::string path = dir.file("replaced.sock");
  auto first = bind_listeners("unix:" + path, 1, false, false);
  // Someone else removed our file and started their own server on the path.
  ASSERT_EQ(unlink(path.c_str()), 0);
  Guard second{bind_listeners("unix:" + path, 1, false, false)};
  first.close_all();
  int c = unix_connect(path);
  EXPECT_GE(c, 0) << "close_all removed a socket file that was not ours";
  if (c >= 0) close(c);
}

}  // namespace
}  // namespace uringrpc::loop
