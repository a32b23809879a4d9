// Unit tests for the systemd pieces below the Server: the watchdog rule
// (src/server/watchdog_rule.h) walked across its boundaries, the ping period, the journal
// check (src/base/journal.h), and the checks on adopted listening sockets
// (loop::adopt_listener, Server::add_listen_fd, add_listen_fds_from_systemd).
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/journal.h"
#include "loop/listener.h"
#include "server/watchdog_rule.h"
#include "uringrpc/errors.h"
#include "uringrpc/server.h"
#include "uringrpc/systemd.h"

namespace uringrpc {
namespace {

using server::WatchdogRule;
using Shards = std::vector<unsigned>;

// ---------------------------------------------------------------- watchdog rule

TEST(WatchdogRule, FirstTickProbesEveryShardAndWithholdsThePing) {
  WatchdogRule rule(3);
  auto v = rule.tick({0, 0, 0});
  EXPECT_FALSE(v.ping);
  EXPECT_EQ(v.post_probe, (Shards{0, 1, 2}));
  EXPECT_TRUE(v.stalled.empty()) << "no probe was pending yet: nobody is late";
}

TEST(WatchdogRule, PingsExactlyWhenTheLastShardHasTurned) {
  WatchdogRule rule(3);
  rule.tick({0, 0, 0});
  auto v = rule.tick({1, 1, 0});  // shard 2 has not run its probe
  EXPECT_FALSE(v.ping);
  EXPECT_EQ(v.stalled, (Shards{2}));
  EXPECT_EQ(v.post_probe, (Shards{0, 1})) << "at most one probe pending per shard";
  v = rule.tick({1, 1, 1});  // shards 0 and 1 turned at the previous tick, 2 now
  EXPECT_TRUE(v.ping);
  EXPECT_TRUE(v.stalled.empty());
  EXPECT_EQ(v.post_probe, (Shards{2})) << "0 and 1 still have the probe of the previous tick";
}

TEST(WatchdogRule, AfterAPingEveryShardMustTurnAgain) {
  WatchdogRule rule(2);
  rule.tick({0, 0});
  ASSERT_TRUE(rule.tick({1, 1}).ping);
  auto v = rule.tick({2, 1});  // shard 1's turn was counted for the previous ping
  EXPECT_FALSE(v.ping);
  EXPECT_EQ(v.stalled, (Shards{1}));
  EXPECT_TRUE(rule.tick({2, 2}).ping);
}

TEST(WatchdogRule, ManyTurnsOfOneShardDoNotStandInForAnother) {
  WatchdogRule rule(2);
  rule.tick({0, 0});
  for (uint64_t turns = 1; turns <= 5; ++turns) {
    auto v = rule.tick({turns, 0});
    EXPECT_FALSE(v.ping) << "tick " << turns;
    EXPECT_EQ(v.stalled, (Shards{1}));
    EXPECT_EQ(rule.withheld_ticks(), turns + 1);
  }
}

TEST(WatchdogRule, AStuckShardGetsNoSecondProbeAndPingsResumeWhenItRuns) {
  WatchdogRule rule(2);
  rule.tick({0, 0});
  ASSERT_TRUE(rule.tick({1, 1}).ping);
  // Shard 1 blocks: its probe stays pending for many ticks; no new one is posted to it.
  for (uint64_t t = 2; t < 10; ++t) {
    auto v = rule.tick({t, 1});
    EXPECT_FALSE(v.ping);
    EXPECT_EQ(v.post_probe, (Shards{0}));
  }
  // It runs the one pending probe: the next tick pings.
  auto v = rule.tick({10, 2});
  EXPECT_TRUE(v.ping);
  EXPECT_EQ(rule.withheld_ticks(), 0u);
}

TEST(WatchdogRule, OneShardPingsEveryTickItTurns) {
  WatchdogRule rule(1);
  EXPECT_FALSE(rule.tick({0}).ping);
  EXPECT_TRUE(rule.tick({1}).ping);
  EXPECT_FALSE(rule.tick({1}).ping);
  EXPECT_TRUE(rule.tick({2}).ping);
}

TEST(WatchdogPingInterval, IsHalfOfWatchdogUsecInMillisecondsAndAtLeastOne) {
  EXPECT_EQ(server::watchdog_ping_interval_ms(0), 0u) << "no watchdog";
  EXPECT_EQ(server::watchdog_ping_interval_ms(1), 1u);
  EXPECT_EQ(server::watchdog_ping_interval_ms(3999), 1u);
  EXPECT_EQ(server::watchdog_ping_interval_ms(4000), 2u);
  EXPECT_EQ(server::watchdog_ping_interval_ms(30'000'000), 15'000u);
}

// ---------------------------------------------------------------- journal

TEST(JournalStream, MatchesOnlyTheDeviceAndInodeOfTheFd) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  struct stat st{};
  ASSERT_EQ(fstat(p[1], &st), 0);
  const std::string exact = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  EXPECT_TRUE(base::journal_stream_matches(exact.c_str(), p[1]));
  EXPECT_FALSE(base::journal_stream_matches(nullptr, p[1]));
  EXPECT_FALSE(base::journal_stream_matches("", p[1]));
  EXPECT_FALSE(base::journal_stream_matches((std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), p[1]));
  EXPECT_FALSE(base::journal_stream_matches((std::to_string(st.st_dev + 1) + ":" + std::to_string(st.st_ino)).c_str(), p[1]));
  EXPECT_FALSE(base::journal_stream_matches((exact + "x").c_str(), p[1])) << "trailing garbage";
  EXPECT_FALSE(base::journal_stream_matches(std::to_string(st.st_ino).c_str(), p[1])) << "no colon";
  int other[2];
  ASSERT_EQ(pipe(other), 0);
  EXPECT_FALSE(base::journal_stream_matches(exact.c_str(), other[1])) << "another pipe";
  for (int fd : {p[0], p[1], other[0], other[1]}) close(fd);
}

// ---------------------------------------------------------------- adopted sockets

int tcp_socket(int type, bool listening) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  if (listening) {
    EXPECT_EQ(listen(fd, 16), 0);
  }
  return fd;
}

int port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

std::string adopt_error(int fd) {
  try {
    loop::ListenerSet set = loop::adopt_listener(fd, 2, "add_listen_fd(" + std::to_string(fd) + ")");
    set.close_all();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(AdoptListener, SharesOneDuplicateAmongShardsAndLeavesTheCallersFdAlone) {
  int fd = tcp_socket(SOCK_STREAM, true);
  loop::ListenerSet set = loop::adopt_listener(fd, 3, "test");
  ASSERT_EQ(set.fds.size(), 1u);
  EXPECT_NE(set.fds[0], fd);
  EXPECT_TRUE(fcntl(set.fds[0], F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(set.shard_fds.size(), 3u);
  for (const auto& s : set.shard_fds) {
    EXPECT_EQ(s, set.fds);
  }
  EXPECT_TRUE(set.adopted);
  EXPECT_EQ(set.port, port_of(fd));
  EXPECT_NE(set.address.find("127.0.0.1:" + std::to_string(port_of(fd))), std::string::npos) << set.address;
  set.close_all();
  EXPECT_GE(fcntl(fd, F_GETFD), 0) << "the caller's descriptor stays open";
  close(fd);
}

TEST(AdoptListener, RefusesWhatIsNotAListeningStreamSocketNamingWhy) {
  int dgram = tcp_socket(SOCK_DGRAM, false);
  EXPECT_NE(adopt_error(dgram).find("datagram"), std::string::npos) << adopt_error(dgram);
  int unlistened = tcp_socket(SOCK_STREAM, false);
  EXPECT_NE(adopt_error(unlistened).find("not listening"), std::string::npos) << adopt_error(unlistened);
  int file = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  EXPECT_NE(adopt_error(file).find("not a socket"), std::string::npos) << adopt_error(file);
  int netlink = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
  EXPECT_NE(adopt_error(netlink).find("AF_NETLINK"), std::string::npos) << adopt_error(netlink);
  for (int fd : {dgram, unlistened, file, netlink}) {
    EXPECT_EQ(adopt_error(fd).rfind("add_listen_fd(" + std::to_string(fd) + "): ", 0), 0u) << "names the fd";
    close(fd);
  }
  EXPECT_NE(adopt_error(dgram).find("not an open file descriptor"), std::string::npos) << "closed";
  EXPECT_NE(adopt_error(-1).find("not an open file descriptor"), std::string::npos);
}

TEST(AdoptListener, TakesAListeningUnixSocket) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "uringrpc-adopt-%d", getpid());  // abstract
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  loop::ListenerSet set = loop::adopt_listener(fd, 1, "test");
  EXPECT_EQ(set.port, 0);
  set.close_all();
  close(fd);
}

TEST(ServerAddListenFd, ReturnsThePortAndRefusesTheSameSocketTwice) {
  int fd = tcp_socket(SOCK_STREAM, true);
  Server server(ServerOptions{.shards = 2});
  EXPECT_EQ(server.add_listen_fd(fd), port_of(fd));
  int again = dup(fd);
  try {
    server.add_listen_fd(again);
    FAIL() << "the same socket added twice";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("added to this server already"), std::string::npos) << e.what();
  }
  close(again);
  close(fd);
}

TEST(ServerAddListenFd, IsAUsageErrorAfterStart) {
  int fd = tcp_socket(SOCK_STREAM, true);
  Server server(ServerOptions{.shards = 1});
  server.add_listen_fd(fd);
  server.start();
  EXPECT_THROW(server.add_listen_fd(fd), UsageError);
  server.stop();
  close(fd);
}

TEST(ServerAddListenFdsFromSystemd, WithoutSocketActivationThrowsSayingNothingWasPassed) {
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  EXPECT_TRUE(systemd::passed_sockets().empty());
  Server server(ServerOptions{.shards = 1});
  try {
    server.add_listen_fds_from_systemd("grpc");
    FAIL() << "nothing was passed";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("passed no socket"), std::string::npos) << e.what();
  }
}

// LISTEN_FDS for this process, with its sockets moved to fd 3 and up as systemd does.
TEST(ServerAddListenFdsFromSystemd, AdoptsByNameAndNamesThePassedOnesWhenNoneMatches) {
  int a = tcp_socket(SOCK_STREAM, true), b = tcp_socket(SOCK_STREAM, true);
  // fds 3 and 4 may be taken by the test runner: keep what was there and restore it.
  int saved3 = fcntl(3, F_DUPFD_CLOEXEC, 10), saved4 = fcntl(4, F_DUPFD_CLOEXEC, 10);
  ASSERT_EQ(dup2(a, 3), 3);
  ASSERT_EQ(dup2(b, 4), 4);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "2", 1);
  setenv("LISTEN_FDNAMES", "grpc:admin", 1);
  auto passed = systemd::passed_sockets();
  ASSERT_EQ(passed.size(), 2u);
  EXPECT_EQ(passed[0].fd, 3);
  EXPECT_EQ(passed[0].name, "grpc");
  EXPECT_EQ(passed[1].name, "admin");
  EXPECT_TRUE(fcntl(3, F_GETFD) & FD_CLOEXEC) << "not inherited by the process's children";
  {
    Server server(ServerOptions{.shards = 1});
    EXPECT_EQ(server.add_listen_fds_from_systemd("admin"), 1u);
    try {
      server.add_listen_fds_from_systemd("metrics");
      FAIL() << "no socket is named metrics";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("no passed socket is named 'metrics' (passed: 'grpc', 'admin')"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(server.add_listen_fds_from_systemd("grpc"), 1u);
  }
  {
    Server server(ServerOptions{.shards = 1});
    EXPECT_EQ(server.add_listen_fds_from_systemd(), 2u) << "no name: every passed socket";
  }
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  for (auto [saved, fd] : {std::pair{saved3, 3}, std::pair{saved4, 4}}) {
    if (saved >= 0) {
      dup2(saved, fd);
      close(saved);
    } else {
      close(fd);
    }
  }
  close(a);
  close(b);
}

}  // namespace
}  // namespace uringrpc
