// ChildServer (child_server.h): posix_spawn, since the gRPC client's threads already run in
// this process; the port is read from the child's stdout through a pipe.
#include "child_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace uringrpc::reflection_test {

std::string build_dir() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) throw std::runtime_error("readlink /proc/self/exe failed");
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/'));  // $(BUILD)/tests
  return path.substr(0, path.rfind('/'));
}

ChildServer::ChildServer(const std::string& binary, const std::vector<std::string>& args) {
  std::string path = build_dir() + "/" + binary;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> copy = args;
  std::vector<char*> argv{path.data()};
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  int err = posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    throw std::runtime_error("cannot start " + path + ": " + std::strerror(err));
  }
  std::string out;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (out.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    ssize_t got = read(fds[0], buf, sizeof buf);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  stdout_fd_ = fds[0];  // kept open: a child printing more must not die of SIGPIPE
  if (std::sscanf(out.c_str(), "listening on %d", &port_) != 1 || port_ <= 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(stdout_fd_);
    throw std::runtime_error(path + " did not say it listens: \"" + out + "\"");
  }
}

ChildServer::~ChildServer() {
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  close(stdout_fd_);
}

}  // namespace uringrpc::reflection_test
