// Listening-address parsing for bind_listeners. Syntax errors are the caller's mistake
// (std::invalid_argument); a hostname that does not resolve is a BindError, like any other
// reason the address cannot be bound.
#include "loop/listen_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "uringrpc/errors.h"

namespace uringrpc::loop {
namespace {

constexpr int kMaxPort = 65535;

[[noreturn]] void malformed(std::string_view address, std::string_view why) {
  throw std::invalid_argument("malformed listening address \"" + std::string(address) +
                              "\": " + std::string(why));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// Digits only: from_chars alone would accept a leading '-' and stop silently at junk.
int parse_port(std::string_view address, std::string_view text) {
  if (text.empty()) malformed(address, "missing port");
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    malformed(address, "port is not a decimal number");
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > kMaxPort) {
    malformed(address, "port out of range 0..65535");
  }
  return static_cast<int>(value);
}

Endpoint ipv4_endpoint(const in_addr& a, int port) {
  Endpoint e;
  auto* sin = reinterpret_cast<sockaddr_in*>(&e.addr);
  sin->sin_family = AF_INET;
  sin->sin_addr = a;
  e.len = sizeof(sockaddr_in);
  e.set_port(port);
  return e;
}

Endpoint ipv6_endpoint(const in6_addr& a, int port) {
  Endpoint e;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_addr = a;
  e.len = sizeof(sockaddr_in6);
  e.v6only = !IN6_IS_ADDR_UNSPECIFIED(&a) && !IN6_IS_ADDR_V4MAPPED(&a);
  e.set_port(port);
  return e;
}

ListenAddress parse_unix(std::string_view address, std::string_view rest) {
  // "unix://" is gRPC's form for an absolute path; it carries no authority.
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    if (rest.empty() || rest.front() != '/') malformed(address, "unix:// needs an absolute path");
  }
  if (rest.empty()) malformed(address, "empty unix socket path");
  if (rest.find('\0') != std::string_view::npos) malformed(address, "NUL in unix socket path");
  sockaddr_un probe{};
  // Keep room for the terminating NUL so the path is an ordinary C string everywhere.
  if (rest.size() >= sizeof(probe.sun_path)) {
    malformed(address, "unix socket path longer than " +
                           std::to_string(sizeof(probe.sun_path) - 1) + " bytes");
  }
  ListenAddress out;
  out.text = std::string(address);
  out.is_unix = true;
  out.unix_path = std::string(rest);
  Endpoint e;
  auto* sun = reinterpret_cast<sockaddr_un*>(&e.addr);
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, rest.data(), rest.size());
  e.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + rest.size() + 1);
  e.v6only = false;
  out.endpoints.push_back(e);
  return out;
}

struct AddrinfoFree {
  void operator()(addrinfo* ai) const noexcept { freeaddrinfo(ai); }
};

std::vector<Endpoint> resolve_hostname(std::string_view address, const std::string& host,
                                       int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* raw = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  std::unique_ptr<addrinfo, AddrinfoFree> list(raw);
  if (rc != 0) {
    throw BindError("cannot bind " + std::string(address) + ": cannot resolve \"" + host +
                    "\": " + gai_strerror(rc));
  }
  std::vector<Endpoint> out;
  for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    Endpoint e;
    if (ai->ai_family == AF_INET) {
      e = ipv4_endpoint(reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, port);
    } else if (ai->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<sockaddr_in6*>(ai->ai_addr);
      e = ipv6_endpoint(sin6->sin6_addr, port);
      // Keeps link-local addresses bindable.
      reinterpret_cast<sockaddr_in6*>(&e.addr)->sin6_scope_id = sin6->sin6_scope_id;
    } else {
      continue;
    }
    // /etc/hosts may list an address twice; binding it twice would conflict with ourselves.
    bool seen = std::any_of(out.begin(), out.end(), [&](const Endpoint& o) {
      return o.len == e.len && std::memcmp(&o.addr, &e.addr, e.len) == 0;
    });
    if (!seen) out.push_back(e);
  }
  if (out.empty()) {
    throw BindError("cannot bind " + std::string(address) + ": \"" + host +
                    "\" has no IPv4 or IPv6 address");
  }
  return out;
}

bool is_hostname_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_';
}

}  // namespace

int Endpoint::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return 0;
}

void Endpoint::set_port(int port) noexcept {
  auto p = htons(static_cast<uint16_t>(port));
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&addr)->sin_port = p;
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = p;
}

std::string Endpoint::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, buf,
              sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
  }
  if (family() == AF_UNIX) {
    return "unix:" + std::string(reinterpret_cast<const sockaddr_un*>(&addr)->sun_path);
  }
  return "<unknown address family " + std::to_string(family()) + ">";
}

ListenAddress parse_listen_address(std::string_view address) {
  constexpr std::string_view kUnixPrefix = "unix:";
  if (address.substr(0, kUnixPrefix.size()) == kUnixPrefix) {
    return parse_unix(address, address.substr(kUnixPrefix.size()));
  }

  ListenAddress out;
  out.text = std::string(address);
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos) malformed(address, "missing ']'");
    std::string host(address.substr(1, close - 1));
    std::string_view rest = address.substr(close + 1);
    if (rest.empty() || rest.front() != ':') malformed(address, "missing port");
    out.port = parse_port(address, rest.substr(1));
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) malformed(address, "bad IPv6 address");
    out.endpoints.push_back(ipv6_endpoint(a6, out.port));
    return out;
  }

  auto colon = address.rfind(':');
  if (colon == std::string_view::npos) malformed(address, "missing port");
  std::string host(address.substr(0, colon));
  if (host.empty()) malformed(address, "missing host (use \"[::]:N\" for every interface)");
  if (host.find(':') != std::string::npos) {
    malformed(address, "IPv6 addresses must be in brackets, e.g. \"[::1]:50051\"");
  }
  out.port = parse_port(address, address.substr(colon + 1));

  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    out.endpoints.push_back(ipv4_endpoint(a4, out.port));
    return out;
  }
  // getaddrinfo would take "127.1" or "1.2.3" as inet_aton shorthands; a mistyped dotted
  // quad should be an error, not a surprise address.
  auto digit_or_dot = [](char c) { return (c >= '0' && c <= '9') || c == '.'; };
  if (std::all_of(host.begin(), host.end(), digit_or_dot)) {
    malformed(address, "bad IPv4 address");
  }
  if (!std::all_of(host.begin(), host.end(), is_hostname_char)) {
    malformed(address, "bad character in host name");
  }
  if (iequals(host, "localhost")) {
    // gRPC listens on both loopbacks for "localhost"; mapping it here keeps /etc/hosts and
    // the resolver out of the way and never blocks.
    out.endpoints.push_back(ipv6_endpoint(in6addr_loopback, out.port));
    in_addr lo{};
    lo.s_addr = htonl(INADDR_LOOPBACK);
    out.endpoints.push_back(ipv4_endpoint(lo, out.port));
    return out;
  }
  out.endpoints = resolve_hostname(address, host, out.port);
  return out;
}

}  // namespace uringrpc::loop
