// A real gRPC client process SIGKILLed in the middle of a bidi stream: the server sees the
// connection vanish, cancels the handler (ServerContext::cancelled() is true when its frame
// goes), frees the call and keeps serving; under `make test SANITIZE=1` LSan checks that
// nothing was leaked. The client is this test binary run again with a disabled helper test.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

constexpr char kTargetEnv[] = "URINGRPC_KILLED_CLIENT_TARGET";

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// The client process: one bidi call, one message each way, then it waits mid-stream to be
// killed. Run only by KilledClient below (disabled otherwise); it gives up by itself after
// a minute should the parent die first.
TEST(KilledClientChild, DISABLED_StreamsOneMessageThenWaits) {
  const char* target = std::getenv(kTargetEnv);
  if (!target) GTEST_SKIP() << "run by KilledClient only";
  StreamingCall call(make_channel(target), "/e2e.Killed/Echo", 60s);
  ASSERT_TRUE(call.write("hello"));
  ASSERT_EQ(call.read(), std::optional<std::string>("hello"));
  std::this_thread::sleep_for(60s);
}

// Deleted with the test: kills and reaps the child if the test ends early.
struct ChildProcess {
  pid_t pid = -1;
  ~ChildProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

TEST(KilledClient, ClientProcessKilledMidStreamCancelsHandlerAndFreesCall) {
  std::atomic<int> reads{0}, destroyed{0}, cancelled_seen{0}, completed{0};
  struct FrameGuard {
    std::atomic<int>* destroyed;
    std::atomic<int>* cancelled_seen;
    ServerContext* ctx;
    ~FrameGuard() {
      if (ctx->cancelled()) cancelled_seen->fetch_add(1);
      destroyed->fetch_add(1);
    }
  };
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  server.add_method("/e2e.Killed/Echo",
                    uringrpc::bidi_streaming([&](uringrpc::Reader<Bytes>& reader, ServerContext& ctx) -> Task<void> {
                      FrameGuard guard{&destroyed, &cancelled_seen, &ctx};
                      while (auto m = co_await reader.next()) {
                        co_await ctx.write(*m);
                        reads.fetch_add(1);
                      }
                      completed.fetch_add(1);
                    }));
  server.add_method("/e2e.Killed/Unary",
                    uringrpc::unary([](Bytes req, ServerContext&) -> Task<Bytes> { co_return req; }));
  int port = server.add_insecure_port("127.0.0.1:0");
  server.start();
  std::string target = "127.0.0.1:" + std::to_string(port);

  // The child: this binary, running only the helper above, its output discarded.
  std::string filter = "--gtest_filter=KilledClientChild.DISABLED_StreamsOneMessageThenWaits";
  std::string also = "--gtest_also_run_disabled_tests";
  std::string self = "/proc/self/exe";
  std::vector<char*> argv{self.data(), filter.data(), also.data(), nullptr};
  std::vector<std::string> env_strings{std::string(kTargetEnv) + "=" + target};
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  ChildProcess child;
  int rc = posix_spawn(&child.pid, self.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ASSERT_EQ(rc, 0) << "posix_spawn: " << rc;

  // A loaded machine can take seconds to start a gRPC client.
  ASSERT_TRUE(wait_until([&] { return reads.load() == 1; }, 30s)) << "the client never got its echo";
  // The handler is now suspended in reader.next(), mid-stream.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(destroyed.load(), 0);

  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
  child.pid = -1;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  EXPECT_TRUE(wait_until([&] { return destroyed.load() == 1; }, 10s))
      << "the handler of the killed client was not destroyed";
  EXPECT_EQ(cancelled_seen.load(), 1) << "ServerContext::cancelled() was false when the frame went";
  EXPECT_EQ(completed.load(), 0) << "the read loop ended normally instead of being cancelled";

  auto channel = make_channel(target);
  CallResult r = unary_call(channel, "/e2e.Killed/Unary", "still serving", 10s);
  EXPECT_TRUE(r.ok()) << describe(r);
  server.stop();
}

}  // namespace
