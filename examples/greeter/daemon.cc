// The example server's daemon side (daemon.h): flags, socket activation, TLS, SIGTERM and
// SIGHUP.
#include "daemon.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

namespace example {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
  return set;
}

// Under systemd, stderr is the journal: "<5>" makes a line a notice, "<3>" an error.
const char* priority(int syslog_priority) {
  static const char* const prefixes[] = {"<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>"};
  return uringrpc::systemd::stderr_is_journal() ? prefixes[syslog_priority & 7] : "";
}

}  // namespace

bool parse_flags(int argc, char** argv, DaemonFlags& flags) {
  const char* usage = "usage: %s [--port N] [--shards N] [--grace-ms MS] [--tls-cert FILE --tls-key FILE]\n";
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--tls-cert" || flag == "--tls-key") {
      if (i + 1 == argc || argv[i + 1][0] == '\0') {
        std::fprintf(stderr, usage, argv[0]);
        return false;
      }
      (flag == "--tls-cert" ? flags.tls_cert : flags.tls_key) = argv[i + 1];
      continue;
    }
    unsigned* value = flag == "--port"       ? &flags.port
                      : flag == "--shards"   ? &flags.options.shards
                      : flag == "--grace-ms" ? &flags.grace_ms
                                             : nullptr;
    unsigned limit = flag == "--grace-ms" ? 3'600'000 : 65535;
    char extra;  // "%u%c" matches 1 field only when the whole argument is a number
    if (!value || i + 1 == argc || std::sscanf(argv[i + 1], "%u%c", value, &extra) != 1 || *value > limit) {
      std::fprintf(stderr, usage, argv[0]);
      return false;
    }
  }
  if (flags.tls_cert.empty() != flags.tls_key.empty()) {
    std::fprintf(stderr, "%s: --tls-cert and --tls-key go together\n", argv[0]);
    return false;
  }
  return true;
}

void block_stop_signals() {
  sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int serve(uringrpc::Server& server, const DaemonFlags& flags) {
  try {
    std::optional<uringrpc::TlsCredentials> tls;
    if (!flags.tls_cert.empty()) tls = uringrpc::TlsCredentials::from_files(flags.tls_cert, flags.tls_key);
    auto passed = uringrpc::systemd::passed_sockets();
    if (passed.empty()) {
      std::string address = "localhost:" + std::to_string(flags.port);
      int bound = tls ? server.add_secure_port(address, *tls) : server.add_insecure_port(address);
      std::printf("listening on %d%s\n", bound, tls ? " (TLS)" : "");
    }
    for (const auto& socket : passed) {
      int bound = tls ? server.add_listen_fd(socket.fd, *tls) : server.add_listen_fd(socket.fd);
      std::printf("listening on %d (systemd socket '%s')%s\n", bound, socket.name.c_str(), tls ? " (TLS)" : "");
    }
    server.start();  // under systemd (Type=notify) this also sends READY=1
    std::fflush(stdout);  // scripts wait for these lines
  } catch (const uringrpc::BindError& e) {
    std::fprintf(stderr, "%s%s\n", priority(3), e.what());
    return 1;
  } catch (const std::invalid_argument& e) {  // a passed socket that cannot serve gRPC, bad TLS files
    std::fprintf(stderr, "%s%s\n", priority(3), e.what());
    return 1;
  }
  sigset_t set = stop_signals();
  int signal;
  while ((signal = sigwaitinfo(&set, nullptr)) == SIGHUP || signal < 0) {
    if (signal < 0) continue;  // EINTR
    // Reading files blocks, which is fine here: this thread serves no calls. A failure
    // leaves the certificate in use unchanged; the library has logged why too.
    try {
      size_t ports = server.reload_tls();
      std::fprintf(stderr, "%sSIGHUP: TLS certificate reloaded for %zu port%s\n", priority(5), ports,
                   ports == 1 ? "" : "s");
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "%sSIGHUP: %s\n", priority(3), e.what());
    }
  }
  std::fprintf(stderr, "%ssignal %d: stopping, in-flight calls get up to %u ms\n", priority(5), signal, flags.grace_ms);
  server.stop(std::chrono::milliseconds(flags.grace_ms));
  return 0;
}

}  // namespace example
