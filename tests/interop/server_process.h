// build/bin/interop-server as a child process of the interop tests: started with given
// flags, its port (and, with a generated certificate, its test CA) read from its stdout,
// stopped with a signal. The binary is found beside the test binary (../bin/).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace uringrpc::interop {

class ServerProcess {
 public:
  // Starts the server and waits up to 10 s for "listening on PORT". Throws
  // std::runtime_error (with what the server printed) if it exits or never says it.
  explicit ServerProcess(const std::vector<std::string>& args);
  // Kills the server if it still runs.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const noexcept { return port_; }
  // The "test CA: PATH" the server prints when it made its own certificate; else empty.
  const std::string& ca_path() const noexcept { return ca_path_; }

  // Sends `signal` and waits up to `timeout` for the exit. Returns the exit code, 128 +
  // the signal number if a signal ended it, or -1 if it still runs after the timeout.
  int stop(int signal, std::chrono::milliseconds timeout);

  // Runs the server binary with `args` to completion (bad flags exit at once); returns
  // its exit code, or -1 if it does not exit within `timeout` (then it is killed).
  static int run_to_exit(const std::vector<std::string>& args, std::chrono::milliseconds timeout);
  static std::string binary_path();

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  std::string ca_path_;
};

}  // namespace uringrpc::interop
