// Turns a listening address as users write it ("[::]:0", "localhost:50051", "unix:/run/x.sock")
// into the socket addresses to bind. Called by bind_listeners (listener.h) when
// Server::add_insecure_port / add_secure_port run at configuration time, never on a shard.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

namespace uringrpc::loop {

// One socket address to listen on, plus what its socket needs beyond the address itself.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  // IPV6_V6ONLY for AF_INET6 sockets. False only for the unspecified address "[::]" (dual
  // stack, as gRPC does, so "[::]:N" also covers 0.0.0.0:N) and for v4-mapped addresses,
  // which cannot be bound by a v6-only socket.
  bool v6only = true;

  int family() const noexcept { return addr.ss_family; }
  // TCP port in host order; 0 for unix sockets or "let the kernel choose".
  int port() const noexcept;
  void set_port(int port) noexcept;
  // "[::1]:50051", "127.0.0.1:50051", "unix:/run/x.sock": for error messages and logs.
  std::string to_string() const;
};

struct ListenAddress {
  std::string text;                 // as the caller gave it
  bool is_unix = false;
  std::string unix_path;            // unix only; a relative path stays relative to the cwd
  int port = 0;                     // requested TCP port; 0 asks the kernel for a free one
  std::vector<Endpoint> endpoints;  // in bind order; never empty
};

// Accepted forms:
//   "<ipv4>:<port>"        dotted quad, e.g. "0.0.0.0:0", "127.0.0.1:50051"
//   "[<ipv6>]:<port>"      e.g. "[::]:0" (dual stack), "[::1]:50051"
//   "localhost:<port>"     ::1 and 127.0.0.1, mapped without any lookup (as gRPC does)
//   "<hostname>:<port>"    getaddrinfo(AI_PASSIVE); may block, hence configuration time only
//   "unix:<path>", "unix:///abs/path"
// Throws std::invalid_argument naming the address when it is malformed (missing host or port,
// port not a decimal number in 0..65535, unbracketed IPv6, unix path too long for sun_path),
// and uringrpc::BindError when a hostname does not resolve.
ListenAddress parse_listen_address(std::string_view address);

}  // namespace uringrpc::loop
