// systemd-test-server: the server of tests/e2e/systemd_test.py. It serves the sockets
// systemd passed (or --port on 127.0.0.1) with default ServerOptions::systemd, so under a
// NOTIFY_SOCKET it sends READY=1, STATUS=, WATCHDOG=1, STOPPING=1 and EXTEND_TIMEOUT_USEC=
// as a systemd service would; one of its methods blocks its shard on purpose, to show that
// a stuck shard stops the watchdog pings.
//   /systemd.Test/Echo        unary, answers with the request bytes
//   /systemd.Test/Sleep       "MS": co_await sleep_for(MS), answers "slept" (its shard runs on)
//   /systemd.Test/BlockShard  "MS": blocks its shard's thread for MS (what a handler must never do)
// Flags: --shards N --grace-ms MS --port N. stdout: "listening on PORT" per socket, then
// "ready"; on SIGTERM/SIGINT it stops with the grace, prints "stopped" and exits 0.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "uringrpc/uringrpc.h"

namespace {

uringrpc::Task<std::string> echo(std::string request, uringrpc::ServerContext&) { co_return request; }

uringrpc::Task<std::string> sleep_ms(std::string request, uringrpc::ServerContext&) {
  co_await uringrpc::sleep_for(std::chrono::milliseconds(std::atoi(request.c_str())));
  co_return std::string("slept");
}

uringrpc::Task<std::string> block_shard(std::string request, uringrpc::ServerContext&) {
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(request.c_str())));  // on purpose
  co_return std::string("unblocked");
}

}  // namespace

int main(int argc, char** argv) {
  uringrpc::ServerOptions options;
  options.shards = 2;
  unsigned grace_ms = 5000;
  int port = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    unsigned v = static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    if (flag == "--shards") options.shards = v;
    else if (flag == "--grace-ms") grace_ms = v;
    else if (flag == "--port") port = static_cast<int>(v);
    else {
      std::fprintf(stderr, "usage: %s [--shards N] [--grace-ms MS] [--port N]\n", argv[0]);
      return 2;
    }
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  uringrpc::Server server(options);
  server.add_method("/systemd.Test/Echo", uringrpc::unary(echo));
  server.add_method("/systemd.Test/Sleep", uringrpc::unary(sleep_ms));
  server.add_method("/systemd.Test/BlockShard", uringrpc::unary(block_shard));
  if (port >= 0) std::printf("listening on %d\n", server.add_insecure_port("127.0.0.1:" + std::to_string(port)));
  // Without --port: no port added, so start() adopts the passed sockets (adopt_listen_fds).
  for (const auto& s : uringrpc::systemd::passed_sockets()) {
    if (port < 0) std::printf("listening on passed socket '%s'\n", s.name.c_str());
  }
  server.start();
  std::printf("ready\n");
  std::fflush(stdout);
  sigwaitinfo(&stop, nullptr);
  server.stop(std::chrono::milliseconds(grace_ms));
  std::printf("stopped\n");
  std::fflush(stdout);
  return 0;
}
