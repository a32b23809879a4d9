// build/bin/interop-server: grpc.testing.TestService (interop_service.h) and an
// UNIMPLEMENTED grpc.testing.UnimplementedService, for gRPC's interop clients and for
// tests/interop/interop_test.cc. Prints "listening on PORT"; SIGINT/SIGTERM stop it gracefully.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "../common/test_certs.h"
#include "interop_flags.h"
#include "interop_service.h"
#include "uringrpc/uringrpc.h"

namespace {

// All addresses, as interop servers listen; IPv4 only where the host has no IPv6.
int add_port(uringrpc::Server& server, unsigned port, const uringrpc::TlsCredentials* tls) {
  auto add = [&](const std::string& address) {
    return tls ? server.add_secure_port(address, *tls) : server.add_insecure_port(address);
  };
  try {
    return add("[::]:" + std::to_string(port));
  } catch (const uringrpc::BindError&) {
    return add("0.0.0.0:" + std::to_string(port));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  auto flags = uringrpc::interop::parse_interop_flags(argc, argv, &error);
  if (!flags) {
    std::fprintf(stderr, "interop-server: %s\n%s\n", error.c_str(), uringrpc::interop::kInteropUsage);
    return 2;
  }
  // Blocked before any server thread exists, so that only sigwaitinfo() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int s : {SIGINT, SIGTERM}) sigaddset(&stop_signals, s);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  uringrpc::interop::InteropTestService test_service(flags->server_id);  // all three outlive the server
  grpc::testing::UnimplementedServiceService unimplemented_service;  // nothing overridden
  uringrpc::ReflectionService reflection;  // grpc.reflection.v1 and v1alpha, for grpc-call
  uringrpc::HealthService health;          // grpc.health.v1, with --health (fleet tests)
  std::string pki_dir;  // the generated test certificate's files, removed on exit
  int status = 0;
  {
    uringrpc::ServerOptions options{.shards = flags->shards};
    options.connection.max_age = flags->max_connection_age;
    options.connection.max_age_grace = flags->max_connection_age_grace;
    options.metrics.enabled = !flags->metrics_listen.empty();
    options.metrics.listen = flags->metrics_listen;
    uringrpc::Server server(options);
    server.add_service(test_service);
    server.add_service(unimplemented_service);
    server.add_service(reflection);
    if (flags->health) server.add_service(health);
    try {
      std::optional<uringrpc::TlsCredentials> tls;
      if (flags->use_tls && !flags->tls_cert_file.empty()) {
        tls = uringrpc::TlsCredentials::from_files(flags->tls_cert_file, flags->tls_key_file);
      } else if (flags->use_tls) {
        // No certificate given: a fresh test CA and a server certificate for localhost,
        // 127.0.0.1, ::1 and *.test.google.fr (the name interop clients override to). Clients
        // trust the CA file named here.
        auto files = uringrpc::testing::write_test_pki_files();
        pki_dir = files.dir;
        std::printf("test CA: %s\n", files.ca_path.c_str());
        tls = uringrpc::TlsCredentials::from_files(files.cert_path, files.key_path);
      }
      int port = add_port(server, flags->port, tls ? &*tls : nullptr);
      server.start();
      if (server.metrics_port() > 0) std::printf("metrics on %d\n", server.metrics_port());
      std::printf("listening on %d\n", port);
      std::fflush(stdout);  // clients wait for this line
      int signal = sigwaitinfo(&stop_signals, nullptr);
      std::fprintf(stderr, "interop-server: signal %d, stopping (grace %lld ms)\n", signal,
                   static_cast<long long>(flags->grace.count()));
      server.stop(flags->grace);
    } catch (const std::exception& e) {  // BindError, unreadable certificate files
      std::fprintf(stderr, "interop-server: %s\n", e.what());
      status = 1;
    }
  }
  if (!pki_dir.empty()) std::filesystem::remove_all(pki_dir);
  return status;
}
