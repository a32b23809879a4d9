// Drives the seed-server program ($BUILD/bin/seed-server) as a child process through its
// contract (see usage() in tests/seed/seed_server_main.cc): stdout lines, stdin commands,
// signals, exit status, stderr on failure; RPCs go through the real gRPC client.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "../common/test_certs.h"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;

const std::string kRequest("\x00\x00\x00", 3);
const std::string kResponse("\x01\x01\x01", 3);

std::string seed_server_path() {
  const char* build = std::getenv("BUILD");
  return std::string(build && *build ? build : "build") + "/bin/seed-server";
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

// One seed-server child: its stdin is a socket (so writing to a dead child is EPIPE, not a
// SIGPIPE that would kill the test binary), stdout is read line by line, stderr collected.
// The destructor always kills (SIGKILL) and reaps the child and joins the reader threads.
class SeedServerProcess {
 public:
  explicit SeedServerProcess(const std::vector<std::string>& args) {
    std::string path = seed_server_path();
    if (access(path.c_str(), X_OK) != 0) {
      error_ = path + " is not an executable (build it: make " + path + ")";
      return;
    }
    int in[2], out[2], err[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
      error_ = std::string("socketpair: ") + std::strerror(errno);
      return;
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      error_ = std::string("pipe2: ") + std::strerror(errno);
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[1], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<std::string> argv_storage{path};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[1]);
    close(out[1]);
    close(err[1]);
    stdin_fd_ = in[0];
    if (rc != 0) {
      error_ = std::string("posix_spawn: ") + std::strerror(rc);
      pid_ = -1;
      close(out[0]);
      close(err[0]);
      return;
    }
    stdout_reader_ = std::thread([this, fd = out[0]] { read_stdout(fd); });
    stderr_reader_ = std::thread([this, fd = err[0]] { read_stderr(fd); });
  }

  ~SeedServerProcess() {
    if (pid_ > 0 && !exit_status_) {
      kill(pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (stdin_fd_ >= 0) close(stdin_fd_);
    if (stdout_reader_.joinable()) stdout_reader_.join();
    if (stderr_reader_.joinable()) stderr_reader_.join();
  }

  SeedServerProcess(const SeedServerProcess&) = delete;
  SeedServerProcess& operator=(const SeedServerProcess&) = delete;

  // Empty when the child runs; otherwise why it could not be started.
  const std::string& spawn_error() const { return error_; }
  pid_t pid() const { return pid_; }

  // The next stdout line, or nullopt at EOF / timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return !lines_.empty() || stdout_eof_; });
    if (lines_.empty()) return std::nullopt;
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    return line;
  }

  // Skips stdout lines until one equals `want`; false at EOF or timeout.
  bool wait_for_line(const std::string& want, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      auto line = read_line(left);
      if (!line) return false;
      seen_.push_back(*line);
      if (*line == want) return true;
    }
  }

  // Reads the first line; it must be "listening on PORT". Returns the port or 0.
  int wait_listening(std::chrono::milliseconds timeout = 10s) {
    auto line = read_line(timeout);
    if (!line) return 0;
    seen_.push_back(*line);
    const std::string prefix = "listening on ";
    if (line->rfind(prefix, 0) != 0) return 0;
    int port = 0;
    auto digits = std::string_view(*line).substr(prefix.size());
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size()) return 0;
    return port;
  }

  bool send_line(const std::string& line) {
    std::string data = line + "\n";
    return send(stdin_fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  void close_stdin() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
  }

  void signal(int sig) { kill(pid_, sig); }

  // The child's wait status once it exited, or nullopt if it still runs after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (exit_status_) return exit_status_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_status_ = status;
        return exit_status_;
      }
      if (r < 0 && errno != EINTR) return std::nullopt;
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }

  // Everything on stderr so far (after exit and a short wait, everything it wrote).
  std::string stderr_text(std::chrono::milliseconds wait_for_eof = 0ms) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait_for_eof, [this] { return stderr_eof_; });
    return stderr_;
  }

  // For failure messages: stdout lines consumed so far, and stderr.
  std::string transcript() {
    std::string s = "stdout:";
    for (const auto& l : seen_) s += "\n  " + l;
    s += "\nstderr:\n" + stderr_text();
    return s;
  }

 private:
  void read_stdout(int fd) {
    std::string partial;
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      partial.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = partial.find('\n')) != std::string::npos) {
        {
          std::lock_guard lock(mu_);
          lines_.push_back(partial.substr(0, nl));
        }
        cv_.notify_all();
        partial.erase(0, nl + 1);
      }
    }
    close(fd);
    {
      std::lock_guard lock(mu_);
      if (!partial.empty()) lines_.push_back(partial);
      stdout_eof_ = true;
    }
    cv_.notify_all();
  }

  void read_stderr(int fd) {
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::lock_guard lock(mu_);
      stderr_.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    {
      std::lock_guard lock(mu_);
      stderr_eof_ = true;
    }
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string error_;
  std::optional<int> exit_status_;
  std::thread stdout_reader_, stderr_reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> lines_;
  bool stdout_eof_ = false;
  std::string stderr_;
  bool stderr_eof_ = false;
  std::vector<std::string> seen_;  // test thread only
};

std::string target(int port) { return "localhost:" + std::to_string(port); }

#define ASSERT_SPAWNED(proc) ASSERT_EQ((proc).spawn_error(), "")

#define EXPECT_EXITS_ZERO(proc, timeout)                                                  \
  do {                                                                                    \
    auto status_ = (proc).wait_exit(timeout);                                             \
    ASSERT_TRUE(status_.has_value()) << "seed-server still running after the stop\n"      \
                                     << (proc).transcript();                              \
    EXPECT_TRUE(WIFEXITED(*status_) && WEXITSTATUS(*status_) == 0)                        \
        << describe_wait_status(*status_) << "\n" << (proc).transcript();                 \
  } while (0)

TEST(SeedServerProgram, PrintsPortServesUnaryCallAndReportsTheCall) {
  SeedServerProcess proc({"--port", "0", "--shards", "2"});
  ASSERT_SPAWNED(proc);
  int port = proc.wait_listening();
  ASSERT_GT(port, 0) << proc.transcript();

  CallResult r = uringrpc::testing::unary_call(uringrpc::testing::make_channel(target(port)),
                                               "/test/SimpleUnaryUnary", kRequest, 4s);
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], kResponse);
  EXPECT_TRUE(proc.wait_for_line("call /test/SimpleUnaryUnary", 5s)) << proc.transcript();

  ASSERT_TRUE(proc.send_line("stop"));
  EXPECT_EXITS_ZERO(proc, 10s);
}

TEST(SeedServerProgram, GracefulStopCommandCancelsBlockedCallWithUnavailableAndExitsZero) {
  SeedServerProcess proc({"--port", "0"});
  ASSERT_SPAWNED(proc);
  int port = proc.wait_listening();
  ASSERT_GT(port, 0) << proc.transcript();

  auto call = uringrpc::testing::start_unary_call(uringrpc::testing::make_channel(target(port)),
                                                  "/test/BlockForever", kRequest, 20s);
  ASSERT_TRUE(proc.wait_for_line("call /test/BlockForever", 5s)) << proc.transcript();

  auto stop_sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(proc.send_line("stop 200"));
  CallResult r = call.get();
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
  EXPECT_LT(std::chrono::steady_clock::now() - stop_sent, 5s) << "the 200 ms grace was not honoured";
  EXPECT_EXITS_ZERO(proc, 5s);
}

TEST(SeedServerProgram, LaterImmediateStopCommandCutsAGracefulStopShort) {
  SeedServerProcess proc({"--port", "0"});
  ASSERT_SPAWNED(proc);
  int port = proc.wait_listening();
  ASSERT_GT(port, 0) << proc.transcript();

  auto call = uringrpc::testing::start_unary_call(uringrpc::testing::make_channel(target(port)),
                                                  "/test/BlockForever", kRequest, 30s);
  ASSERT_TRUE(proc.wait_for_line("call /test/BlockForever", 5s)) << proc.transcript();

  auto stop_sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(proc.send_line("stop 60000"));
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(proc.send_line("stop"));
  CallResult r = call.get();
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
  EXPECT_LT(std::chrono::steady_clock::now() - stop_sent, 5s);
  EXPECT_EXITS_ZERO(proc, 5s);
}

TEST(SeedServerProgram, SigtermExitsZero) {
  SeedServerProcess proc({"--port", "0", "--grace-ms", "1000"});
  ASSERT_SPAWNED(proc);
  ASSERT_GT(proc.wait_listening(), 0) << proc.transcript();
  proc.signal(SIGTERM);
  EXPECT_EXITS_ZERO(proc, 10s);
}

TEST(SeedServerProgram, SigintExitsZero) {
  SeedServerProcess proc({"--port", "0"});
  ASSERT_SPAWNED(proc);
  ASSERT_GT(proc.wait_listening(), 0) << proc.transcript();
  proc.signal(SIGINT);
  EXPECT_EXITS_ZERO(proc, 10s);
}

TEST(SeedServerProgram, EofOnStdinKeepsServing) {
  SeedServerProcess proc({"--port", "0"});
  ASSERT_SPAWNED(proc);
  int port = proc.wait_listening();
  ASSERT_GT(port, 0) << proc.transcript();
  proc.close_stdin();
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(proc.wait_exit(0ms).has_value()) << "exited on stdin EOF\n" << proc.transcript();

  CallResult r = uringrpc::testing::unary_call(uringrpc::testing::make_channel(target(port)),
                                               "/test/SimpleUnaryUnary", kRequest, 4s);
  EXPECT_TRUE(r.ok()) << describe(r);
  proc.signal(SIGTERM);
  EXPECT_EXITS_ZERO(proc, 10s);
}

TEST(SeedServerProgram, ServesTlsWithCertificateAndKeyFiles) {
  auto files = uringrpc::testing::write_test_pki_files();
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{files.dir};

  SeedServerProcess proc({"--port", "0", "--tls-cert", files.cert_path, "--tls-key", files.key_path});
  ASSERT_SPAWNED(proc);
  int port = proc.wait_listening();
  ASSERT_GT(port, 0) << proc.transcript();

  auto channel = uringrpc::testing::make_tls_channel(target(port), uringrpc::testing::test_pki().ca_cert_pem);
  CallResult r = uringrpc::testing::unary_call(channel, "/test/SimpleUnaryUnary", kRequest, 4s);
  ASSERT_TRUE(r.ok()) << describe(r) << "\n" << proc.transcript();
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], kResponse);

  ASSERT_TRUE(proc.send_line("stop"));
  EXPECT_EXITS_ZERO(proc, 10s);
}

TEST(SeedServerProgram, BadFlagExitsNonZeroNamingTheFlag) {
  SeedServerProcess proc({"--port", "0", "--no-such-flag"});
  ASSERT_SPAWNED(proc);
  auto status = proc.wait_exit(5s);
  ASSERT_TRUE(status.has_value()) << "seed-server accepted --no-such-flag\n" << proc.transcript();
  EXPECT_FALSE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
  EXPECT_TRUE(WIFEXITED(*status)) << describe_wait_status(*status);
  EXPECT_NE(proc.stderr_text(2s).find("--no-such-flag"), std::string::npos) << proc.transcript();
}

TEST(SeedServerProgram, SecondInstanceWithoutReuseportExitsNonZeroNamingTheAddress) {
  SeedServerProcess first({"--port", "0", "--no-reuseport"});
  ASSERT_SPAWNED(first);
  int port = first.wait_listening();
  ASSERT_GT(port, 0) << first.transcript();

  SeedServerProcess second({"--port", std::to_string(port), "--no-reuseport"});
  ASSERT_SPAWNED(second);
  auto status = second.wait_exit(5s);
  ASSERT_TRUE(status.has_value()) << "second instance runs on a taken port\n" << second.transcript();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << describe_wait_status(*status);
  std::string err = second.stderr_text(2s);
  EXPECT_NE(err.find("[::]:" + std::to_string(port)), std::string::npos) << second.transcript();

  // The first instance is unharmed.
  CallResult r = uringrpc::testing::unary_call(uringrpc::testing::make_channel(target(port)),
                                               "/test/SimpleUnaryUnary", kRequest, 4s);
  EXPECT_TRUE(r.ok()) << describe(r);
  ASSERT_TRUE(first.send_line("stop"));
  EXPECT_EXITS_ZERO(first, 10s);
}

}  // namespace
