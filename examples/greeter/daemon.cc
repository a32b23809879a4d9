// The example server's daemon side (daemon.h): flags, socket activation, SIGTERM.
#include "daemon.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace example {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM}) sigaddset(&set, s);
  return set;
}

// Under systemd, stderr is the journal: "<5>" makes a line a notice, "<3>" an error.
const char* priority(int syslog_priority) {
  static const char* const prefixes[] = {"<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>"};
  return uringrpc::systemd::stderr_is_journal() ? prefixes[syslog_priority & 7] : "";
}

}  // namespace

bool parse_flags(int argc, char** argv, DaemonFlags& flags) {
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    unsigned* value = flag == "--port"       ? &flags.port
                      : flag == "--shards"   ? &flags.options.shards
                      : flag == "--grace-ms" ? &flags.grace_ms
                                             : nullptr;
    unsigned limit = flag == "--grace-ms" ? 3'600'000 : 65535;
    char extra;  // "%u%c" matches 1 field only when the whole argument is a number
    if (!value || i + 1 == argc || std::sscanf(argv[i + 1], "%u%c", value, &extra) != 1 || *value > limit) {
      std::fprintf(stderr, "usage: %s [--port N] [--shards N] [--grace-ms MS]\n", argv[0]);
      return false;
    }
  }
  return true;
}

void block_stop_signals() {
  sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int serve(uringrpc::Server& server, const DaemonFlags& flags) {
  try {
    auto passed = uringrpc::systemd::passed_sockets();
    if (passed.empty()) {
      int bound = server.add_insecure_port("localhost:" + std::to_string(flags.port));
      std::printf("listening on %d\n", bound);
    }
    for (const auto& socket : passed) {
      int bound = server.add_listen_fd(socket.fd);
      std::printf("listening on %d (systemd socket '%s')\n", bound, socket.name.c_str());
    }
    server.start();  // under systemd (Type=notify) this also sends READY=1
    std::fflush(stdout);  // scripts wait for these lines
  } catch (const uringrpc::BindError& e) {
    std::fprintf(stderr, "%s%s\n", priority(3), e.what());
    return 1;
  } catch (const std::invalid_argument& e) {  // a passed socket that cannot serve gRPC
    std::fprintf(stderr, "%s%s\n", priority(3), e.what());
    return 1;
  }
  sigset_t set = stop_signals();
  int signal = sigwaitinfo(&set, nullptr);
  std::fprintf(stderr, "%ssignal %d: stopping, in-flight calls get up to %u ms\n", priority(5), signal, flags.grace_ms);
  server.stop(std::chrono::milliseconds(flags.grace_ms));
  return 0;
}

}  // namespace example
