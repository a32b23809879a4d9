// Sockets made elsewhere (Server::add_listen_fd), called by the real gRPC C++ client: TLS on
// an adopted socket, and stop() leaving the socket listening so that a second server on the
// same socket answers a call made while no server ran (what systemd's .socket units rely
// on across restarts). tests/e2e/systemd_test.py does the same across processes.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::make_tls_channel;
using uringrpc::testing::test_pki;
using uringrpc::testing::unary_call;

// A listening TCP socket on 127.0.0.1, as a .socket unit would hold it. Returns fd and port.
int listening_socket(int& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(fd, 64), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

void add_echo(uringrpc::Server& server, std::string tag) {
  server.add_method("/e2e.ListenFd/Echo", uringrpc::unary([tag](std::string b, ServerContext&) -> Task<std::string> {
                      co_return tag + b;
                    }));
}

TEST(ListenFd, ServesTlsOnAnAdoptedSocketToTheRealClient) {
  int port = 0;
  int fd = listening_socket(port);
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 2});
  add_echo(server, "tls ");
  EXPECT_EQ(server.add_listen_fd(fd, uringrpc::TlsCredentials::from_pem(test_pki().server_chain_pem,
                                                                       test_pki().server_key_pem)),
            port);
  server.start();
  auto r = unary_call(make_tls_channel("127.0.0.1:" + std::to_string(port), test_pki().ca_cert_pem), "/e2e.ListenFd/Echo",
                      "hi");
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "tls hi");
  server.stop();
  close(fd);
}

TEST(ListenFd, StopLeavesTheSocketListeningAndTheNextServerAnswersACallMadeInBetween) {
  int port = 0;
  int fd = listening_socket(port);
  const std::string target = "127.0.0.1:" + std::to_string(port);
  {
    uringrpc::Server first(uringrpc::ServerOptions{.shards = 2});
    add_echo(first, "first ");
    first.add_listen_fd(fd);
    first.start();
    auto r = unary_call(make_channel(target), "/e2e.ListenFd/Echo", "a");
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(r.responses.at(0), "first a");
    first.stop(1s);
  }
  // No server runs now; the socket still listens, so this call's connection waits in the
  // backlog instead of being refused.
  auto pending = uringrpc::testing::start_unary_call(make_channel(target), "/e2e.ListenFd/Echo", "b", 10s);
  std::this_thread::sleep_for(300ms);
  uringrpc::Server second(uringrpc::ServerOptions{.shards = 2});
  add_echo(second, "second ");
  second.add_listen_fd(fd);
  second.start();
  auto r = pending.get();
  ASSERT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.responses.at(0), "second b");
  second.stop();
  close(fd);
}

TEST(ListenFd, AnAddedPortStopsListeningAtStopUnlikeAnAdoptedSocket) {
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  add_echo(server, "");
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  server.stop();
  int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_NE(connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << "its own port is closed";
  close(probe);
}

}  // namespace
