// Socket operations as SQEs (see socket_ops.h). The uring_cmd SQEs are filled by hand:
// Debian's liburing 2.3 has no io_uring_prep_cmd_sock, and its io_uring_sqe names the
// socket command fields by their older union members (the values are the kernel's ABI,
// include/uapi/linux/io_uring.h: level/optname share `addr`, optlen `file_index`, optval
// `addr3`).
#include "loop/socket_ops.h"

#include <cstdint>

namespace uringrpc::loop {
namespace {

enum : uint32_t {
  kSocketOpSiocinq = 0,
  kSocketOpSiocoutq = 1,
  kSocketOpGetsockopt = 2,
  kSocketOpSetsockopt = 3,
};

void prep_socket_cmd(io_uring_sqe* sqe, SocketRef s, uint32_t op) {
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, s.index, nullptr, 0, 0);
  sqe->cmd_op = op;
  use_socket(sqe, s);
}

void prep_sockopt(io_uring_sqe* sqe, SocketRef s, uint32_t op, int level, int name, const int* value) {
  prep_socket_cmd(sqe, s, op);
  sqe->addr = static_cast<uint64_t>(static_cast<uint32_t>(level)) |
              (static_cast<uint64_t>(static_cast<uint32_t>(name)) << 32);
  sqe->file_index = sizeof(int);  // optlen
  sqe->addr3 = reinterpret_cast<uint64_t>(value);
}

}  // namespace

void prep_socket_shutdown(io_uring_sqe* sqe, SocketRef s, int how) {
  io_uring_prep_shutdown(sqe, s.index, how);
  use_socket(sqe, s);
}

void prep_socket_close(io_uring_sqe* sqe, SocketRef s) {
  if (s.direct) {
    io_uring_prep_close_direct(sqe, static_cast<unsigned>(s.index));
  } else {
    io_uring_prep_close(sqe, s.index);
  }
}

void prep_socket_outq(io_uring_sqe* sqe, SocketRef s) { prep_socket_cmd(sqe, s, kSocketOpSiocoutq); }
void prep_socket_inq(io_uring_sqe* sqe, SocketRef s) { prep_socket_cmd(sqe, s, kSocketOpSiocinq); }

void prep_socket_setsockopt(io_uring_sqe* sqe, SocketRef s, int level, int name, const int* value) {
  prep_sockopt(sqe, s, kSocketOpSetsockopt, level, name, value);
}

void prep_socket_getsockopt(io_uring_sqe* sqe, SocketRef s, int level, int name, int* value) {
  prep_sockopt(sqe, s, kSocketOpGetsockopt, level, name, value);
}

}  // namespace uringrpc::loop
