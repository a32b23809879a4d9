// Starting and stopping build/bin/interop-server from the tests (server_process.h):
// posix_spawn rather than fork, since the gRPC client's threads already run in this process.
#include "server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace uringrpc::interop {

namespace {

pid_t spawn(const std::vector<std::string>& args, int stdout_fd) {
  std::string path = ServerProcess::binary_path();
  std::vector<char*> argv;
  argv.push_back(path.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  pid_t pid = -1;
  int err = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) throw std::runtime_error("cannot start " + path + ": " + std::strerror(err));
  return pid;
}

// Polls waitpid until the child exits or the timeout passes.
int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() >= until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

std::string ServerProcess::binary_path() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) throw std::runtime_error("readlink /proc/self/exe failed");
  std::string dir(self, static_cast<size_t>(n));
  dir.resize(dir.rfind('/'));                  // $(BUILD)/tests
  return dir.substr(0, dir.rfind('/')) + "/bin/interop-server";  // $(BUILD)/bin
}

ServerProcess::ServerProcess(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  try {
    pid_ = spawn(args, fds[1]);
  } catch (...) {
    close(fds[0]);
    close(fds[1]);
    throw;
  }
  close(fds[1]);
  stdout_fd_ = fds[0];
  // Line by line until "listening on PORT", remembering "test CA: PATH" on the way.
  std::string out;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (port_ == 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    pollfd p{stdout_fd_, POLLIN, 0};
    char buf[512];
    ssize_t n = left.count() > 0 && poll(&p, 1, static_cast<int>(left.count())) == 1 ? read(stdout_fd_, buf, sizeof buf) : 0;
    if (n <= 0) {
      stop(SIGKILL, std::chrono::seconds(5));
      throw std::runtime_error("interop-server did not say \"listening on PORT\"; it printed: " + out);
    }
    out.append(buf, static_cast<size_t>(n));
    for (size_t eol; (eol = out.find('\n')) != std::string::npos; out.erase(0, eol + 1)) {
      std::string line = out.substr(0, eol);
      if (line.rfind("test CA: ", 0) == 0) ca_path_ = line.substr(9);
      if (line.rfind("listening on ", 0) == 0) port_ = std::stoi(line.substr(13));
    }
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) stop(SIGKILL, std::chrono::seconds(5));
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

int ServerProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int code = wait_exit(pid_, timeout);
  if (code == -1 && signal != SIGKILL) {
    kill(pid_, SIGKILL);  // never leave a server behind a failed test
    wait_exit(pid_, std::chrono::seconds(5));
  }
  pid_ = -1;
  return code;
}

int ServerProcess::run_to_exit(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  pid_t pid = spawn(args, -1);
  int code = wait_exit(pid, timeout);
  if (code == -1) {
    kill(pid, SIGKILL);
    wait_exit(pid, std::chrono::seconds(5));
  }
  return code;
}

}  // namespace uringrpc::interop
