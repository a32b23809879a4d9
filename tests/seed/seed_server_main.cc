// seed-server: the seed's service (seed_service.cc) behind a uringrpc Server, as a program
// that other tests drive through stdin/stdout and signals (tests/e2e/seed_server_program_test.cc,
// Python clients). The contract is in usage() below; keep the two in step.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "seed_service.h"
#include "uringrpc/errors.h"
#include "uringrpc/server.h"
#include "uringrpc/tls.h"

namespace {

constexpr long kDefaultGraceMs = 4000;  // SHORT_TIMEOUT of the seed

const char kUsage[] =
    "usage: seed-server [flags]\n"
    "Serves the methods of gRPC's asyncio server test (/test/SimpleUnaryUnary, ...) on [::]:PORT.\n"
    "\n"
    "flags:\n"
    "  --port N                  port to listen on; 0 (the default) picks a free one\n"
    "  --no-reuseport            one listener shared by all shards instead of SO_REUSEPORT per shard\n"
    "  --max-concurrent-rpcs K   server-wide cap on RPCs in flight; 0 (default) is no cap\n"
    "  --grace-ms G              grace period of the stop that SIGTERM starts (default 4000)\n"
    "  --tls-cert FILE           certificate chain (PEM); with --tls-key the port is TLS\n"
    "  --tls-key FILE            private key (PEM)\n"
    "  --shards N                shard threads; 0 (default) is one per CPU\n"
    "  --help                    this text\n"
    "\n"
    "stdout: 'listening on PORT' once serving; 'call METHOD' each time a handler starts.\n"
    "stdin, one command a line: 'stop' (immediate) or 'stop MS' (graceful, MS milliseconds);\n"
    "  commands arriving during a shutdown join it (the shortest grace wins). EOF on stdin\n"
    "  does not stop the server.\n"
    "signals: SIGTERM stops with --grace-ms, SIGINT stops at once.\n"
    "exit status: 0 once stopped; 1 if the port cannot be bound or TLS files are unusable;\n"
    "  2 for a bad flag. Errors are one line on stderr naming the address or flag.\n";

struct Flags {
  int port = 0;
  bool reuseport = true;
  size_t max_concurrent_rpcs = 0;
  long grace_ms = kDefaultGraceMs;
  std::string tls_cert;
  std::string tls_key;
  unsigned shards = 0;
};

class UsageFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class T>
T parse_number(std::string_view flag, std::string_view text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value < min ||
      value > max) {
    throw UsageFailure(std::string(flag) + ": expected a number from " + std::to_string(min) + " to " +
                       std::to_string(max) + ", got '" + std::string(text) + "'");
  }
  return value;
}

Flags parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw UsageFailure(std::string(flag) + ": missing value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--port") {
      flags.port = parse_number<int>(flag, value(), 0, 65535);
    } else if (flag == "--no-reuseport") {
      flags.reuseport = false;
    } else if (flag == "--max-concurrent-rpcs") {
      flags.max_concurrent_rpcs = parse_number<size_t>(flag, value(), 0, size_t{1} << 32);
    } else if (flag == "--grace-ms") {
      flags.grace_ms = parse_number<long>(flag, value(), 0, 86'400'000);
    } else if (flag == "--tls-cert") {
      flags.tls_cert = value();
    } else if (flag == "--tls-key") {
      flags.tls_key = value();
    } else if (flag == "--shards") {
      flags.shards = parse_number<unsigned>(flag, value(), 0, 1024);
    } else {
      throw UsageFailure(std::string(flag) + ": unknown flag");
    }
  }
  if (flags.tls_cert.empty() != flags.tls_key.empty()) {
    throw UsageFailure(flags.tls_cert.empty() ? "--tls-key: needs --tls-cert" : "--tls-cert: needs --tls-key");
  }
  return flags;
}

// stdout lines come from shard threads (on_call) and the main thread: one lock, one
// flushed write per line, so a reader never sees two lines interleaved.
std::mutex g_stdout_mu;
void say(std::string line) {
  line += '\n';
  std::lock_guard lock(g_stdout_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void complain(const std::string& line) { std::fprintf(stderr, "seed-server: %s\n", line.c_str()); }

// A closed 0/1/2 would be handed to the next socket the server opens (and stdin commands
// would then be read from a client connection): park /dev/null there first.
void ensure_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      int null_fd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (null_fd >= 0 && null_fd != fd) {
        dup2(null_fd, fd);
        close(null_fd);
      }
    }
  }
}

// Every stop request runs Server::stop on its own thread: stop blocks until the shutdown
// is over, and a later, more urgent request (SIGINT, "stop") must be able to join it.
class Stopper {
 public:
  explicit Stopper(uringrpc::Server& server) : server_(server) {}
  ~Stopper() { join(); }

  void request(std::optional<std::chrono::milliseconds> grace) {
    threads_.emplace_back([this, grace] {
      try {
        if (grace) {
          server_.stop(*grace);
        } else {
          server_.stop();
        }
      } catch (const std::exception& e) {
        complain(std::string("stop failed: ") + e.what());
      }
    });
  }
  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  uringrpc::Server& server_;
  std::vector<std::thread> threads_;
};

void handle_command(std::string_view line, Stopper& stopper) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (line.empty()) return;
  if (line == "stop") {
    stopper.request(std::nullopt);
    return;
  }
  if (line.starts_with("stop ")) {
    std::string_view ms = line.substr(5);
    long value = 0;
    auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), value);
    if (ec == std::errc() && end == ms.data() + ms.size() && value >= 0) {
      stopper.request(std::chrono::milliseconds(value));
      return;
    }
  }
  complain("unknown command '" + std::string(line) + "' (expected 'stop' or 'stop MS')");
}

int run(const Flags& flags) {
  // Signals are taken synchronously through a signalfd read by the main loop below; block
  // them before any thread exists so that every thread (shards, pool) inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a test that stops reading our stdout must not kill us
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
  int done_fd = eventfd(0, EFD_CLOEXEC);
  if (signal_fd < 0 || done_fd < 0) {
    complain(std::string("signalfd/eventfd: ") + std::strerror(errno));
    return 1;
  }

  uringrpc::ServerOptions options;
  options.shards = flags.shards;
  options.listen.so_reuseport = flags.reuseport;
  options.calls.max_concurrent = flags.max_concurrent_rpcs;
  uringrpc::Server server(options);
  uringrpc::seed::SeedService service;
  service.on_call = [](std::string_view method) { say("call " + std::string(method)); };
  service.register_methods(server);

  const std::string address = "[::]:" + std::to_string(flags.port);
  int port = 0;
  try {
    if (flags.tls_cert.empty()) {
      port = server.add_insecure_port(address);
    } else {
      auto credentials = uringrpc::TlsCredentials::from_files(flags.tls_cert, flags.tls_key);
      port = server.add_secure_port(address, credentials);
    }
  } catch (const uringrpc::BindError& e) {
    complain("cannot listen on " + address + ": " + e.what());
    return 1;
  } catch (const std::invalid_argument& e) {
    complain("cannot listen on " + address + " with TLS: " + e.what());
    return 1;
  }

  server.start();
  say("listening on " + std::to_string(port));

  std::thread waiter([&] {
    try {
      server.wait();
    } catch (const std::exception& e) {
      complain(std::string("wait failed: ") + e.what());
    }
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(done_fd, &one, sizeof one);
  });

  Stopper stopper(server);
  bool stdin_open = true;
  std::string pending;
  for (;;) {
    pollfd fds[3] = {{done_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}, {stdin_open ? 0 : -1, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      complain(std::string("poll: ") + std::strerror(errno));
      stopper.request(std::nullopt);
      break;
    }
    if (fds[0].revents) break;  // the server has stopped
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      if (read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGTERM) {
          stopper.request(std::chrono::milliseconds(flags.grace_ms));
        } else {
          stopper.request(std::nullopt);
        }
      }
    }
    if (fds[2].revents & (POLLNVAL | POLLERR)) {
      stdin_open = false;
    } else if (fds[2].revents & (POLLIN | POLLHUP)) {
      char buf[4096];
      ssize_t n = read(0, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        // EOF (or a dead stdin): keep serving; under systemd stdin is /dev/null.
        stdin_open = false;
        if (!pending.empty()) handle_command(pending, stopper);
        pending.clear();
        continue;
      }
      pending.append(buf, static_cast<size_t>(n));
      size_t newline;
      while ((newline = pending.find('\n')) != std::string::npos) {
        handle_command(std::string_view(pending).substr(0, newline), stopper);
        pending.erase(0, newline + 1);
      }
    }
  }
  waiter.join();
  stopper.join();
  close(signal_fd);
  close(done_fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_standard_fds();
  Flags flags;
  try {
    flags = parse_flags(argc, argv);
  } catch (const UsageFailure& e) {
    complain(std::string(e.what()) + " (see --help)");
    return 2;
  }
  try {
    return run(flags);
  } catch (const std::exception& e) {
    complain(e.what());
    return 1;
  }
}
