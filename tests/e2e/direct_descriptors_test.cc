// End-to-end tests of ListenOptions::direct_descriptors with the real gRPC client: connections
// accepted into each shard ring's registered file table are not bounded by the process's
// RLIMIT_NOFILE (a server in a child process with a soft limit of 64 serves 240), their peer
// addresses are right, TLS works, graceful shutdown reaches them, closed connections give
// their slot back, and a full table refuses (reuseport) or leaves connections to other
// shards (shared listener) without disturbing open connections.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "../common/h2_frames.h"
#include "../common/test_certs.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::make_tls_channel;
using uringrpc::testing::start_unary_call;
using uringrpc::testing::test_pki;
using uringrpc::testing::unary_call;

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

std::string target(int port) { return "127.0.0.1:" + std::to_string(port); }

// Answers with the peer address the server saw; "Slow" sleeps first (graceful shutdown).
void add_methods(uringrpc::Server& server) {
  server.add_method("/e2e.Direct/Peer", uringrpc::unary([](Bytes, ServerContext& ctx) -> Task<Bytes> {
                      co_return Bytes(std::string(ctx.peer()));
                    }));
  server.add_method("/e2e.Direct/Slow", uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> {
                      co_await uringrpc::sleep_for(std::chrono::milliseconds(500));
                      co_return req;
                    }));
}

// The local address of a connected socket, as the server spells a peer.
std::string local_name(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "?";
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string("ipv4:") + buf + ":" + std::to_string(ntohs(a.sin_port));
}

// A raw h2c connection: client preface + SETTINGS; an accepted connection answers with the
// server's SETTINGS frame, a refused one is closed.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    static const std::string kHello = uringrpc::testing::h2::client_hello();
    ::send(fd_, kHello.data(), kHello.size(), MSG_NOSIGNAL);
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // True once the server's SETTINGS arrived; false on timeout or when it closed (closed()).
  bool served_within(std::chrono::milliseconds limit) {
    auto end = Clock::now() + limit;
    while (buf_.size() < 9 && !closed_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) <= 0) {
        if (left.count() <= 0) break;
        continue;
      }
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n > 0) {
        buf_.append(tmp, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        closed_ = true;
      }
    }
    return buf_.size() >= 9 && buf_[3] == 0x04;
  }
  // Waits up to `limit` for the server to close the connection (EOF or reset).
  bool closed_within(std::chrono::milliseconds limit) {
    served_within(limit);
    return closed_;
  }
  bool closed() const { return closed_; }
  int fd() const { return fd_; }

  // One gRPC call on stream 1 of /e2e.Direct/Peer: the peer address the server reports.
  std::string call_peer(std::chrono::milliseconds limit) {
    namespace h2 = uringrpc::testing::h2;
    std::string out = h2::frame(0x1, 0x4, 1, h2::request_block("/e2e.Direct/Peer")) +
                      h2::frame(0x0, 0x1, 1, h2::grpc_message(""));
    if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) return "";
    auto end = Clock::now() + limit;
    while (Clock::now() < end && !closed_) {
      h2::Frame f;
      size_t n;
      while ((n = h2::parse_frame(buf_, f)) > 0) {
        buf_.erase(0, n);
        if (f.type == 0x0 && f.stream == 1 && f.payload.size() >= 5) return f.payload.substr(5);
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char tmp[4096];
      ssize_t got = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
      if (got > 0) {
        buf_.append(tmp, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        closed_ = true;
      }
    }
    return "";
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  std::string buf_;
  bool closed_ = false;
};

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

// ---- a server under a low RLIMIT_NOFILE, in a child process (the limit is the process's,
// and the gRPC client in this process needs a descriptor per connection).

struct ChildServer {
  pid_t pid = -1;
  int port = 0;
  int tls_port = 0;
  int to_child = -1;    // a byte: stop gracefully (5 s grace)
  int from_child = -1;  // the ports, then one byte when the stop has returned

  ~ChildServer() {
    if (to_child >= 0) ::close(to_child);
    if (from_child >= 0) ::close(from_child);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  // Exit status of the child (-1: still running after `limit`).
  int wait_exit(std::chrono::milliseconds limit) {
    int status = 0;
    auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }
};

// Child: soft RLIMIT_NOFILE = nofile, `shards` shards with direct descriptors (default
// table: the soft limit), an insecure and a TLS port. Exit codes: 0 after a graceful stop,
// 2-5 for setup failures.
std::unique_ptr<ChildServer> fork_server(rlim_t nofile, unsigned shards) {
  const auto& pki = test_pki();  // made before fork: the child needs no OpenSSL key generation
  int down[2], up[2];
  if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0) return nullptr;
  auto c = std::make_unique<ChildServer>();
  c->pid = ::fork();
  if (c->pid == 0) {
    // Only the pipes stay open: the limit bounds descriptor numbers, and this process's
    // (gRPC's, earlier tests') must not use the child's 64.
    for (int fd = 3; fd < 65536; ++fd) {
      if (fd != down[0] && fd != up[1]) ::close(fd);
    }
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = nofile;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(2);
    try {
      uringrpc::ServerOptions options;
      options.shards = shards;
      options.listen.raise_descriptor_limit = false;
      options.listen.direct_descriptors = true;
      uringrpc::Server server(options);
      add_methods(server);
      int ports[2];
      ports[0] = server.add_insecure_port("127.0.0.1:0");
      ports[1] = server.add_secure_port("127.0.0.1:0",
                                        uringrpc::TlsCredentials::from_pem(pki.server_chain_pem, pki.server_key_pem));
      server.start();
      if (::write(up[1], ports, sizeof ports) != sizeof ports) ::_exit(3);
      char cmd = 0;
      if (::read(down[0], &cmd, 1) != 1) ::_exit(4);
      server.stop(std::chrono::seconds(5));
      server.wait();
      char done = 1;
      if (::write(up[1], &done, 1) != 1) ::_exit(3);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child server: %s\n", e.what());
      ::_exit(5);
    }
    ::_exit(0);
  }
  ::close(down[0]);
  ::close(up[1]);
  c->to_child = down[1];
  c->from_child = up[0];
  int ports[2] = {0, 0};
  pollfd p{c->from_child, POLLIN, 0};
  if (::poll(&p, 1, 10000) != 1 || ::read(c->from_child, ports, sizeof ports) != sizeof ports) return nullptr;
  c->port = ports[0];
  c->tls_port = ports[1];
  return c;
}

TEST(DirectDescriptors, ServerUnderADescriptorLimitOf64Serves240ConnectionsWithTheirPeersThenStopsGracefully) {
  constexpr rlim_t kNofile = 64;
  constexpr int kConnections = 240;  // 6 shards x 64 slots = 384: room for SO_REUSEPORT's uneven hash
  auto child = fork_server(kNofile, 6);
  ASSERT_TRUE(child) << "the child server did not start";

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::string> seen;
  for (int i = 0; i < kConnections; ++i) {
    auto ch = make_channel(target(child->port));
    CallResult r = unary_call(ch, "/e2e.Direct/Peer", "", 10s);
    ASSERT_TRUE(r.ok()) << "connection " << i << ": " << describe(r);
    ASSERT_EQ(r.responses.size(), 1u);
    seen.push_back(r.responses[0]);
    channels.push_back(std::move(ch));
  }
  // Every connection is a different peer, each an ipv4 address of this host.
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size());
  for (const auto& p : seen) EXPECT_EQ(p.rfind("ipv4:127.0.0.1:", 0), 0u) << p;

  // All of them still work: a second call on each (the connections are held, not redone).
  for (int i = 0; i < kConnections; ++i) {
    CallResult r = unary_call(channels[i], "/e2e.Direct/Peer", "", 10s);
    ASSERT_TRUE(r.ok()) << "second call on connection " << i << ": " << describe(r);
    EXPECT_EQ(r.responses.at(0), seen[i]) << "connection " << i << " changed peer: it was reconnected";
  }

  // TLS through direct descriptors.
  for (int i = 0; i < 4; ++i) {
    auto tls = make_tls_channel(target(child->tls_port), test_pki().ca_cert_pem, "localhost");
    CallResult r = unary_call(tls, "/e2e.Direct/Peer", "", 10s);
    ASSERT_TRUE(r.ok()) << "TLS connection " << i << ": " << describe(r);
    channels.push_back(std::move(tls));
  }

  // Graceful stop: a call in flight finishes, the server says GOAWAY, every connection is
  // closed and the child's stop() returns.
  auto slow = start_unary_call(channels[7], "/e2e.Direct/Slow", "last", 10s);
  std::this_thread::sleep_for(150ms);
  char cmd = 's';
  ASSERT_EQ(::write(child->to_child, &cmd, 1), 1);
  CallResult last = slow.get();
  EXPECT_TRUE(last.ok()) << "call in flight at the stop: " << describe(last);
  EXPECT_EQ(last.responses.size(), 1u);
  EXPECT_EQ(child->wait_exit(15s), 0) << "the child server did not stop cleanly";
}

// Raw connections opened together, then each asks its peer: every answer is that socket's
// own address (a single accept address buffer shared by queued accepts would mix them up).
TEST(DirectDescriptors, PeerOfEachConnectionIsItsOwnAddress) {
  auto child = fork_server(64, 2);
  ASSERT_TRUE(child);
  std::vector<std::unique_ptr<RawConnection>> conns;
  for (int i = 0; i < 40; ++i) conns.push_back(std::make_unique<RawConnection>(child->port));
  for (auto& c : conns) {
    ASSERT_TRUE(c->served_within(5s));
    EXPECT_EQ(c->call_peer(5s), local_name(c->fd()));
  }
  conns.clear();
  char cmd = 's';
  ASSERT_EQ(::write(child->to_child, &cmd, 1), 1);
  EXPECT_EQ(child->wait_exit(15s), 0);
}

// ---- in this process: the table's boundary (slots given explicitly, below any limit).

std::unique_ptr<uringrpc::Server> make_server(unsigned shards, size_t slots, bool reuseport, int& port,
                                              size_t max_connections = 0) {
  uringrpc::ServerOptions options;
  options.shards = shards;
  options.listen.so_reuseport = reuseport;
  options.listen.max_connections = max_connections;
  options.listen.direct_descriptors = true;
  options.listen.direct_slots_per_shard = slots;
  options.metrics.enabled = true;
  auto server = std::make_unique<uringrpc::Server>(options);
  add_methods(*server);
  port = server->add_insecure_port("127.0.0.1:0");
  server->start();
  return server;
}

std::string open_count(const uringrpc::Server& s) {
  std::string t = s.metrics_text();
  auto at = t.find("\nuringrpc_server_connections ");
  return at == std::string::npos ? "?" : t.substr(at + 29, t.find('\n', at + 1) - at - 29);
}

TEST(DirectDescriptors, FullTableRefusesTheNextConnectionAndKeepsServingTheOthers) {
  int port = 0;
  auto server = make_server(1, 8, true, port);
  std::vector<std::shared_ptr<grpc::Channel>> open;
  for (int i = 0; i < 8; ++i) {
    open.push_back(make_channel(target(port)));
    CallResult r = unary_call(open.back(), "/e2e.Direct/Peer", "", 10s);
    ASSERT_TRUE(r.ok()) << "connection " << i + 1 << " of 8: " << describe(r);
  }
  // The ninth: accepted by the kernel into a full table, which closes it at once.
  RawConnection ninth(port);
  EXPECT_TRUE(ninth.closed_within(5s)) << "the connection past the table was neither refused nor closed";
  EXPECT_FALSE(ninth.served_within(0ms));
  EXPECT_TRUE(wait_until(
      [&] { return has_line(server->metrics_text(), "uringrpc_server_connections_refused_total 1"); }, 5s));
  const std::string text = server->metrics_text();
  EXPECT_TRUE(has_line(text, "uringrpc_server_connections_accepted_total 8")) << text;
  // The eight are unaffected, and the shard's loop runs on.
  for (int i = 0; i < 8; ++i) {
    CallResult r = unary_call(open[i], "/e2e.Direct/Peer", "", 10s);
    EXPECT_TRUE(r.ok()) << "connection " << i + 1 << " after the refusal: " << describe(r);
  }
  // One goes: its slot serves the next connection.
  open.pop_back();
  ASSERT_TRUE(wait_until([&] { return open_count(*server) == "7"; }, 10s)) << open_count(*server);
  RawConnection next(port);
  EXPECT_TRUE(next.served_within(5s)) << "a freed slot was not reused";
  server->stop(std::chrono::seconds(2));
  server->wait();
}

TEST(DirectDescriptors, OpeningAndClosingThreeTimesTheTableLeaksNoSlot) {
  int port = 0;
  constexpr int kSlots = 16;
  auto server = make_server(1, kSlots, true, port);
  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<RawConnection>> conns;
    for (int i = 0; i < kSlots; ++i) {
      conns.push_back(std::make_unique<RawConnection>(port));
      ASSERT_TRUE(conns.back()->served_within(5s)) << "round " << round << ", connection " << i;
    }
    conns.clear();  // the client closes; the server's slots must come back
    ASSERT_TRUE(wait_until([&] { return open_count(*server) == "0"; }, 10s))
        << "round " << round << ": still open " << open_count(*server);
  }
  // And gRPC calls on a full table's worth of fresh connections still work.
  std::vector<std::shared_ptr<grpc::Channel>> open;
  for (int i = 0; i < kSlots; ++i) {
    open.push_back(make_channel(target(port)));
    CallResult r = unary_call(open.back(), "/e2e.Direct/Peer", "", 10s);
    ASSERT_TRUE(r.ok()) << describe(r);
  }
  EXPECT_TRUE(has_line(server->metrics_text(), "uringrpc_server_connections_refused_total 0"));
  server->stop(std::chrono::seconds(2));
  server->wait();
}

TEST(DirectDescriptors, SharedListenerLeavesConnectionsToTheShardWithRoom) {
  int port = 0;
  auto server = make_server(2, 4, /*reuseport=*/false, port);
  std::vector<std::unique_ptr<RawConnection>> conns;
  for (int i = 0; i < 8; ++i) {
    conns.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(conns.back()->served_within(5s)) << "connection " << i + 1 << " of 2 x 4 slots";
  }
  // Both tables full: the ninth waits in the backlog, neither refused nor served...
  RawConnection ninth(port);
  EXPECT_FALSE(ninth.served_within(300ms));
  EXPECT_FALSE(ninth.closed());
  // ...until a slot frees up.
  conns.erase(conns.begin());
  EXPECT_TRUE(ninth.served_within(5s));
  EXPECT_TRUE(has_line(server->metrics_text(), "uringrpc_server_connections_refused_total 0"));
  server->stop(std::chrono::seconds(2));
  server->wait();
}

TEST(DirectDescriptors, MaxConnectionsCapHoldsTheNextConnectionUntilOneCloses) {
  int port = 0;
  auto server = make_server(2, 64, true, port, /*max_connections=*/3);
  std::vector<std::unique_ptr<RawConnection>> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(conns.back()->served_within(5s)) << "connection " << i + 1 << " below the cap";
  }
  RawConnection fourth(port);
  EXPECT_FALSE(fourth.served_within(300ms));
  EXPECT_FALSE(fourth.closed());
  conns.erase(conns.begin());
  EXPECT_TRUE(fourth.served_within(5s));
  auto ch = make_channel(target(port));
  conns.erase(conns.begin());
  CallResult r = unary_call(ch, "/e2e.Direct/Peer", "", 10s);
  EXPECT_TRUE(r.ok()) << describe(r);
  server->stop(std::chrono::seconds(2));
  server->wait();
}

TEST(DirectDescriptors, TableLargerThanTheSoftDescriptorLimitFailsStart) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  uringrpc::ServerOptions options;
  options.shards = 1;
  options.listen.raise_descriptor_limit = false;
  options.listen.direct_descriptors = true;
  options.listen.direct_slots_per_shard = std::min<rlim_t>(rl.rlim_cur + 1, 1u << 20);
  if (options.listen.direct_slots_per_shard <= rl.rlim_cur) GTEST_SKIP() << "no limit to exceed";
  uringrpc::Server server(options);
  add_methods(server);
  server.add_insecure_port("127.0.0.1:0");
  EXPECT_THROW(server.start(), std::runtime_error);
}

}  // namespace
