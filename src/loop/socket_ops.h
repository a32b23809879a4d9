// SQEs for the socket operations a connection needs besides receive and send, on a socket
// that is either a descriptor or a slot of the ring's registered file table (a direct
// descriptor, which no syscall can name). Used by transport::Connection and the server's
// acceptors; the socket commands need Linux 6.7+ (IORING_OP_URING_CMD on sockets).
#pragma once

#include <liburing.h>

namespace uringrpc::loop {

// A socket as the ring names it.
struct SocketRef {
  int index = -1;       // the descriptor, or the slot in the ring's table
  bool direct = false;  // index is a slot: every SQE on it carries IOSQE_FIXED_FILE
};

// Sets IOSQE_FIXED_FILE on an SQE already prepared on s.index when s is direct.
inline void use_socket(io_uring_sqe* sqe, SocketRef s) {
  if (s.direct) sqe->flags |= IOSQE_FIXED_FILE;
}

void prep_socket_shutdown(io_uring_sqe* sqe, SocketRef s, int how);
// A direct socket's slot is freed (and the socket closed) by IORING_OP_CLOSE on the slot.
void prep_socket_close(io_uring_sqe* sqe, SocketRef s);
// The socket's unsent + unacknowledged bytes (SIOCOUTQ) as the completion's result.
void prep_socket_outq(io_uring_sqe* sqe, SocketRef s);
// The bytes waiting to be read (SIOCINQ) as the completion's result.
void prep_socket_inq(io_uring_sqe* sqe, SocketRef s);
// setsockopt / getsockopt of an int; *value must stay valid until the completion (a
// static constant for setsockopt). getsockopt's result is the option's length.
void prep_socket_setsockopt(io_uring_sqe* sqe, SocketRef s, int level, int name, const int* value);
void prep_socket_getsockopt(io_uring_sqe* sqe, SocketRef s, int level, int name, int* value);

}  // namespace uringrpc::loop
