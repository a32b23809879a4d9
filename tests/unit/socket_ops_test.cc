// The socket operations of loop/socket_ops.h on a direct descriptor (a slot of a ring's
// registered file table, which no syscall can name): accept into a sparse table, then
// TCP_NODELAY set and read back, SIOCINQ / SIOCOUTQ, shutdown and close of the slot, all
// through the ring. Also the boundary of the table: the accept past its last slot fails
// with ENFILE and the kernel closes that connection.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "loop/socket_ops.h"

namespace {

using uringrpc::loop::SocketRef;

class DirectSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(io_uring_queue_init(16, &ring_, 0), 0);
    ASSERT_EQ(io_uring_register_files_sparse(&ring_, kSlots), 0);
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(listener_, 16), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    addr_ = a;
  }
  void TearDown() override {
    for (int fd : clients_) ::close(fd);
    ::close(listener_);
    io_uring_queue_exit(&ring_);
  }

  int connect_client() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_), 0);
    clients_.push_back(fd);
    return fd;
  }

  // Submits the prepared SQE and returns its result.
  int run() {
    EXPECT_EQ(io_uring_submit(&ring_), 1);
    io_uring_cqe* cqe = nullptr;
    EXPECT_EQ(io_uring_wait_cqe(&ring_, &cqe), 0);
    int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    return res;
  }

  int accept_direct() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_accept_direct(sqe, listener_, nullptr, nullptr, 0, IORING_FILE_INDEX_ALLOC - 1);
    return run();
  }

  static constexpr unsigned kSlots = 2;
  io_uring ring_{};
  int listener_ = -1;
  sockaddr_in addr_{};
  std::vector<int> clients_;
};

// The socket commands' getsockopt reads SOL_SOCKET options only, so the option is read
// back through a descriptor made for the test from the slot (IORING_OP_FIXED_FD_INSTALL,
// Linux 6.8+; opcode 54, not in liburing 2.3's headers).
TEST_F(DirectSocket, NoDelayIsSetThroughTheRingAndReadsBack) {
  connect_client();
  int slot = accept_direct();
  ASSERT_GE(slot, 0);
  SocketRef s{slot, true};
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_rw(54 /* IORING_OP_FIXED_FD_INSTALL */, sqe, slot, nullptr, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE;
  int fd = run();
  ASSERT_GE(fd, 0) << std::strerror(-fd);
  clients_.push_back(fd);
  int value = -1;
  socklen_t len = sizeof value;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_EQ(value, 0) << "a fresh socket has Nagle on";
  static const int kOne = 1;
  uringrpc::loop::prep_socket_setsockopt(io_uring_get_sqe(&ring_), s, IPPROTO_TCP, TCP_NODELAY, &kOne);
  ASSERT_EQ(run(), 0);
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_NE(value, 0);
  // A SOL_SOCKET option reads back through the ring itself.
  int type = -1;
  uringrpc::loop::prep_socket_getsockopt(io_uring_get_sqe(&ring_), s, SOL_SOCKET, SO_TYPE, &type);
  EXPECT_GE(run(), 0);
  EXPECT_EQ(type, SOCK_STREAM);
}

TEST_F(DirectSocket, InqCountsUnreadBytesAndOutqDrainsAfterTheFin) {
  int client = connect_client();
  int slot = accept_direct();
  ASSERT_GE(slot, 0);
  SocketRef s{slot, true};
  ASSERT_EQ(::send(client, "hello", 5, 0), 5);
  uringrpc::loop::prep_socket_inq(io_uring_get_sqe(&ring_), s);
  EXPECT_EQ(run(), 5);

  uringrpc::loop::prep_socket_shutdown(io_uring_get_sqe(&ring_), s, SHUT_WR);
  EXPECT_EQ(run(), 0);
  char buf[8];
  EXPECT_EQ(::recv(client, buf, sizeof buf, 0), 0) << "the FIN reached the client";
  // The FIN counts until the client's ACK of it is in.
  int outq = -1;
  for (int i = 0; i < 200 && outq != 0; ++i) {
    if (i > 0) ::usleep(5000);
    uringrpc::loop::prep_socket_outq(io_uring_get_sqe(&ring_), s);
    outq = run();
  }
  EXPECT_EQ(outq, 0);
  uringrpc::loop::prep_socket_close(io_uring_get_sqe(&ring_), s);
  EXPECT_EQ(run(), 0);
}

TEST_F(DirectSocket, AcceptPastTheLastSlotFailsAndTheKernelClosesThatConnection) {
  connect_client();
  connect_client();
  int third = connect_client();
  ASSERT_GE(accept_direct(), 0);
  ASSERT_GE(accept_direct(), 0);
  EXPECT_EQ(accept_direct(), -ENFILE);
  pollfd p{third, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  char buf[8];
  EXPECT_LE(::recv(third, buf, sizeof buf, 0), 0) << "the refused connection is closed";
  // A closed slot is reusable.
  uringrpc::loop::prep_socket_close(io_uring_get_sqe(&ring_), SocketRef{0, true});
  EXPECT_EQ(run(), 0);
  connect_client();
  EXPECT_EQ(accept_direct(), 0);
}

}  // namespace
