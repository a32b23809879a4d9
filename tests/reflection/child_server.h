// A server binary run as a child process of reflection-tests: started with arguments, its
// port read from its "listening on PORT" line, killed when the object goes.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace uringrpc::reflection_test {

class ChildServer {
 public:
  // `binary` relative to the build directory ("bin/interop-server"). Throws
  // std::runtime_error when it does not say it listens within 10 s.
  ChildServer(const std::string& binary, const std::vector<std::string>& args);
  ~ChildServer();
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int stdout_fd_ = -1;
};

// The build directory: the parent of the test binary's directory ($(BUILD)/tests/..).
std::string build_dir();

}  // namespace uringrpc::reflection_test
