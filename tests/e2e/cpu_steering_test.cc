// loop.pin_shards_to_cpus and listen.steer_to_receiving_cpu with the real gRPC client: shard
// threads are pinned one CPU each, and a connection opened from a thread pinned to CPU c (its
// SYN is received on c over loopback) is served by the shard on c: the handler, which runs
// on its connection's shard, reports sched_getcpu(). The client hands gRPC the socket it
// connected itself (CreateInsecureChannelFromFd), so the connecting CPU is the test's choice.
#include <arpa/inet.h>
#include <dirent.h>
#include <grpcpp/create_channel_posix.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Bytes;
using uringrpc::ServerContext;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::unary_call;

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

class CpuSteering : public ::testing::Test {
 protected:
  void start(bool steer) {
    cpus_ = allowed_cpus();
    if (cpus_.size() < 2) GTEST_SKIP() << "needs at least 2 CPUs in the affinity mask";
    if (cpus_.size() > 8) cpus_.resize(8);
    uringrpc::ServerOptions opts;
    opts.shards = static_cast<unsigned>(cpus_.size());
    opts.loop.pin_shards_to_cpus = true;
    opts.listen.steer_to_receiving_cpu = steer;
    server_ = std::make_unique<uringrpc::Server>(opts);
    server_->add_method("/e2e.Cpu/Where", uringrpc::unary([](Bytes, ServerContext&) -> Task<Bytes> {
                          co_return Bytes(std::to_string(sched_getcpu()));
                        }));
    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  // Connects from a thread pinned to `cpu` and returns the CPU the handler ran on (or the
  // call's failure).
  std::string handler_cpu_for_connection_from(int cpu) {
    std::string out;
    std::thread t([&] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        out = "cannot pin the client";
        return;
      }
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port_));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        out = "connect failed";
        return;
      }
      auto channel = grpc::CreateInsecureChannelFromFd("127.0.0.1:" + std::to_string(port_), fd);
      CallResult r = unary_call(channel, "/e2e.Cpu/Where", "", 5s);
      out = r.ok() && r.responses.size() == 1 ? r.responses[0] : describe(r);
    });
    t.join();
    return out;
  }

  std::vector<int> cpus_;
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
};

// The threads of this process named "uringrpc/N" (shard threads), by task id.
std::vector<std::pair<int, std::string>> shard_threads() {
  std::vector<std::pair<int, std::string>> out;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::string comm;
    std::getline(std::ifstream(std::string("/proc/self/task/") + e->d_name + "/comm"), comm);
    if (comm.rfind("uringrpc/", 0) == 0) out.emplace_back(std::stoi(e->d_name), comm);
  }
  closedir(dir);
  return out;
}

// The CPUs `tid` may run on.
std::vector<int> affinity_of(int tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(tid, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

TEST_F(CpuSteering, EachShardThreadIsPinnedToOneCpuOfTheMask) {
  // Only this server's shards: threads of servers that earlier tests stopped may linger.
  auto before = shard_threads();
  start(false);
  if (IsSkipped()) return;
  std::vector<int> pinned;
  std::string seen;
  // A shard pins itself when its thread starts; give every thread a moment to get there.
  for (int attempt = 0; attempt < 100; ++attempt) {
    pinned.clear();
    seen.clear();
    for (const auto& [tid, comm] : shard_threads()) {
      if (std::find(before.begin(), before.end(), std::make_pair(tid, comm)) != before.end()) continue;
      std::vector<int> cpus = affinity_of(tid);
      seen += comm + ":" + std::to_string(cpus.size()) + " CPUs ";
      if (cpus.size() == 1) pinned.push_back(cpus[0]);
    }
    std::sort(pinned.begin(), pinned.end());
    if (pinned == cpus_) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(pinned, cpus_) << "one shard pinned to each CPU of the mask; threads: " << seen;
}

TEST_F(CpuSteering, ConnectionIsServedByTheShardOnTheCpuThatReceivedIt) {
  start(true);
  if (IsSkipped()) return;
  for (int round = 0; round < 3; ++round) {
    for (int c : cpus_) {
      EXPECT_EQ(handler_cpu_for_connection_from(c), std::to_string(c)) << "connection from CPU " << c;
    }
  }
}

TEST(CpuSteeringOptions, SteeringNeedsPinnedShardsAndOwnReuseportListeners) {
  auto error = [](auto change) {
    uringrpc::ServerOptions o;
    o.shards = 2;
    o.listen.steer_to_receiving_cpu = true;
    o.loop.pin_shards_to_cpus = true;
    change(o);
    try {
      uringrpc::Server s(o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error([](auto&) {}), "");
  for (auto change : {+[](uringrpc::ServerOptions& o) { o.loop.pin_shards_to_cpus = false; },
                      +[](uringrpc::ServerOptions& o) { o.listen.so_reuseport = false; },
                      +[](uringrpc::ServerOptions& o) { o.listen.share_port = true; }}) {
    EXPECT_NE(error(change).find("ServerOptions::listen.steer_to_receiving_cpu is true"), std::string::npos)
        << error(change);
  }
}

}  // namespace
