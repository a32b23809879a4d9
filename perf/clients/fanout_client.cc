// fanout-client: the load side of `make fanout-compare` (perf/fanout_compare.py), one process
// apart from the server, so that ours (perf/fanout_server.cc) and grpc-go's
// (perf/anchors/go/fanout) get exactly the same client. N helloworld SayHelloStream
// subscriptions through the real gRPC C++ client (callback reactors, S streams per
// connection), then phases of publishing, each driven through the server's unary SayHello
// commands ("publish N U", "stats", "close"; see perf/fanout_server.cc):
//   --phase NAME:MESSAGES:BURST:INTERVAL_US  MESSAGES in groups of BURST; a group is asked
//        for once every live subscriber has every earlier message, and the server publishes
//        its messages one every INTERVAL_US (0: back to back). BURST = MESSAGES with an
//        interval is a fixed publishing rate; BURST 1 is one broadcast at a time.
// The server stamps each message with its CLOCK_MONOTONIC time of publishing; this process
// reads the same clock (one machine, one kernel) when gRPC hands it the message, so the
// delivery latency is publish to the client's OnReadDone. With --server-pid it also reads
// the server's utime+stime (/proc/PID/stat) and VmRSS/VmHWM over each phase.
// Prints one `result ...` line of key=value figures per phase.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helloworld.grpc.pb.h"

namespace {

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::atomic<uint64_t> g_delivered{0};
// Per sequence number: when this client asked for the message to be published (the time of
// its "publish" command, plus i × the interval for the i-th of the job). Latency from here
// includes the server's publisher scheduling, which the server's own stamp leaves out.
std::unique_ptr<std::atomic<int64_t>[]> g_asked_ns;
uint64_t g_asked_size = 0;
std::atomic<uint64_t> g_finished{0};

class Sub final : public grpc::ClientReadReactor<helloworld::HelloReply> {
 public:
  Sub(helloworld::Greeter::Stub& stub, size_t expected) {
    latencies_us_.reserve(expected);
    asked_us_.reserve(expected);
    stub.async()->SayHelloStream(&ctx_, &req_, this);
    StartRead(&reply_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    int64_t now = monotonic_ns();
    const char* text = reply_.message().c_str();  // "m <seq> <publish ns>"
    char* end = nullptr;
    uint64_t seq = std::strtoull(text + 2, &end, 10);
    int64_t sent = std::strtoll(end, nullptr, 10);
    {
      std::lock_guard<std::mutex> lock(mu_);
      latencies_us_.push_back(static_cast<uint32_t>(std::max<int64_t>(0, now - sent) / 1000));
      int64_t asked = seq < g_asked_size ? g_asked_ns[seq].load(std::memory_order_acquire) : 0;
      asked_us_.push_back(static_cast<uint32_t>(std::max<int64_t>(0, asked ? now - asked : 0) / 1000));
      if (seq != next_seq_) ++gaps_;
      next_seq_ = seq + 1;
      ++received_;
    }
    g_delivered.fetch_add(1, std::memory_order_relaxed);
    StartRead(&reply_);
  }
  void OnDone(const grpc::Status& s) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ok_ = s.ok();
      done_ = true;
    }
    g_finished.fetch_add(1);
  }
  // Moves this phase's latencies (from the server's stamp, from the request) into out.
  void take_latencies(std::vector<uint32_t>& out, std::vector<uint32_t>& asked) {
    std::lock_guard<std::mutex> lock(mu_);
    out.insert(out.end(), latencies_us_.begin(), latencies_us_.end());
    asked.insert(asked.end(), asked_us_.begin(), asked_us_.end());
    latencies_us_.clear();
    asked_us_.clear();
  }
  uint64_t received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  bool ok() {
    std::lock_guard<std::mutex> lock(mu_);
    return ok_;
  }
  uint64_t gaps() {
    std::lock_guard<std::mutex> lock(mu_);
    return gaps_;
  }

 private:
  grpc::ClientContext ctx_;
  helloworld::HelloRequest req_;
  helloworld::HelloReply reply_;
  std::mutex mu_;  // this reactor's callbacks against the main thread's reads
  std::vector<uint32_t> latencies_us_, asked_us_;
  uint64_t next_seq_ = 0, received_ = 0, gaps_ = 0;
  bool done_ = false, ok_ = false;
};

bool wait_for(const std::function<bool()>& pred, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

struct ProcSample {
  double cpu_s = 0;  // utime + stime
  long rss_kib = 0, hwm_kib = 0;
};

ProcSample sample(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream in(line.substr(paren + 2));  // from field 3 (state) on
    std::string field;
    unsigned long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::stoul(field);
      if (i == 15) stime = std::stoul(field);
    }
    s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atol(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) s.hwm_kib = std::atol(line.c_str() + 6);
  }
  return s;
}

double self_cpu_s() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Phase {
  std::string name;
  uint64_t messages = 0, burst = 0, interval_us = 0;
};

}  // namespace

int main(int argc, char** argv) {
  size_t subscribers = 10000, per_connection = 90;
  int port = 0, server_pid = 0;
  std::vector<Phase> phases;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--port") port = std::atoi(value.c_str());
    else if (flag == "--server-pid") server_pid = std::atoi(value.c_str());
    else if (flag == "--subscribers") subscribers = std::strtoull(value.c_str(), nullptr, 10);
    else if (flag == "--streams-per-connection") per_connection = std::strtoull(value.c_str(), nullptr, 10);
    else if (flag == "--phase") {
      Phase p;
      std::replace(value.begin(), value.end(), ':', ' ');
      std::istringstream in(value);
      if (!(in >> p.name >> p.messages >> p.burst >> p.interval_us) || !p.messages || !p.burst) {
        std::fprintf(stderr, "--phase NAME:MESSAGES:BURST:INTERVAL_US, MESSAGES and BURST positive\n");
        return 2;
      }
      phases.push_back(p);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (!port || !subscribers || !per_connection || phases.empty() || argc % 2 == 0) {
    std::fprintf(stderr, "usage: %s --port N [--server-pid PID] [--subscribers N] [--streams-per-connection S] "
                         "--phase NAME:MESSAGES:BURST:INTERVAL_US ...\n", argv[0]);
    return 2;
  }
  std::string target = "127.0.0.1:" + std::to_string(port);
  auto control = helloworld::Greeter::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  auto command = [&](const std::string& text) -> std::string {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    helloworld::HelloRequest req;
    req.set_name(text);
    helloworld::HelloReply reply;
    grpc::Status s = control->SayHello(&ctx, req, &reply);
    if (!s.ok()) {
      std::fprintf(stderr, "command '%s' failed: %s\n", text.c_str(), s.error_message().c_str());
      std::_Exit(1);
    }
    return reply.message();
  };
  auto server_subscribers = [&] {
    std::istringstream in(command("stats"));
    std::string word;
    size_t n = 0;
    in >> word >> n;
    return n;
  };

  // Below our server's 100 concurrent streams per connection; one subchannel per connection.
  size_t connections = (subscribers + per_connection - 1) / per_connection;
  std::vector<std::unique_ptr<helloworld::Greeter::Stub>> stubs;
  for (size_t c = 0; c < connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("fanout-client.connection", static_cast<int>(c));  // no subchannel sharing
    stubs.push_back(helloworld::Greeter::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  uint64_t total_messages = 0;
  for (auto& p : phases) total_messages += p.messages;
  g_asked_size = total_messages;
  g_asked_ns = std::make_unique<std::atomic<int64_t>[]>(total_messages);
  ProcSample idle = sample(server_pid);
  auto t_subscribe = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Sub>> subs;
  for (size_t i = 0; i < subscribers; ++i) subs.push_back(std::make_unique<Sub>(*stubs[i % connections], total_messages));
  bool subscribed = wait_for([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return server_subscribers() == subscribers;
  }, std::chrono::seconds(120));
  if (!subscribed) {
    std::fprintf(stderr, "only %zu of %zu subscribed\n", server_subscribers(), subscribers);
    std::_Exit(1);
  }
  ProcSample ready = sample(server_pid);
  std::printf("subscribed subscribers=%zu connections=%zu seconds=%.2f server_rss_idle_kib=%ld server_rss_kib=%ld "
              "server_kib_per_subscriber=%.2f\n", subscribers, connections,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_subscribe).count(), idle.rss_kib,
              ready.rss_kib, static_cast<double>(ready.rss_kib - idle.rss_kib) / static_cast<double>(subscribers));
  std::fflush(stdout);

  // Every live subscriber has `sent` messages (a finished one is owed nothing more).
  auto all_have = [&](uint64_t sent) {
    uint64_t want = sent * subscribers;
    if (g_finished.load() == 0) return g_delivered.load() >= want;
    uint64_t have = 0;
    for (auto& s : subs) have += s->done() ? sent : std::min(sent, s->received());
    return have >= want;
  };
  uint64_t sent = 0;
  bool stalled = false;
  std::vector<uint32_t> all, asked;
  for (auto& p : phases) {
    if (stalled) break;
    uint64_t delivered0 = g_delivered.load();
    ProcSample s0 = sample(server_pid);
    double c0 = self_cpu_s();
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t m = 0; m < p.messages && !stalled; m += p.burst) {
      stalled = !wait_for([&] { return all_have(sent); }, std::chrono::seconds(60));
      uint64_t n = std::min(p.burst, p.messages - m);
      int64_t asked_at = monotonic_ns();
      for (uint64_t i = 0; i < n; ++i) {
        g_asked_ns[sent + i].store(asked_at + static_cast<int64_t>(i * p.interval_us * 1000), std::memory_order_release);
      }
      command("publish " + std::to_string(n) + " " + std::to_string(p.interval_us));
      sent += n;
    }
    stalled = stalled || !wait_for([&] { return all_have(sent); }, std::chrono::seconds(120));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ProcSample s1 = sample(server_pid);
    double client_cpu = self_cpu_s() - c0;
    uint64_t delivered = g_delivered.load() - delivered0;
    all.clear();
    asked.clear();
    for (auto& s : subs) s->take_latencies(all, asked);
    std::sort(all.begin(), all.end());
    std::sort(asked.begin(), asked.end());
    auto pct_of = [](const std::vector<uint32_t>& v, double q) {
      return v.empty() ? 0u : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
    };
    auto pct = [&](double q) { return pct_of(all, q); };
    double server_cpu = s1.cpu_s - s0.cpu_s;
    std::printf("result phase=%s messages=%llu burst=%llu interval_us=%llu delivered=%llu expected=%llu seconds=%.3f "
                "msgs_per_s=%.0f p50_us=%u p99_us=%u max_us=%u asked_p50_us=%u asked_p99_us=%u asked_max_us=%u server_cpu_s=%.2f server_us_per_msg=%.3f "
                "server_cores=%.2f server_rss_kib=%ld server_hwm_kib=%ld client_cpu_s=%.2f client_us_per_msg=%.3f "
                "stats=\"%s\" stalled=%d\n",
                p.name.c_str(), static_cast<unsigned long long>(p.messages), static_cast<unsigned long long>(p.burst),
                static_cast<unsigned long long>(p.interval_us), static_cast<unsigned long long>(delivered),
                static_cast<unsigned long long>(p.messages * subscribers), seconds,
                static_cast<double>(delivered) / seconds, pct(0.50), pct(0.99), all.empty() ? 0u : all.back(),
                pct_of(asked, 0.50), pct_of(asked, 0.99), asked.empty() ? 0u : asked.back(),
                server_cpu, delivered ? server_cpu * 1e6 / static_cast<double>(delivered) : 0.0, server_cpu / seconds,
                s1.rss_kib, s1.hwm_kib, client_cpu,
                delivered ? client_cpu * 1e6 / static_cast<double>(delivered) : 0.0, command("stats").c_str(),
                stalled ? 1 : 0);
    std::fflush(stdout);
  }

  command("close");
  bool ended = wait_for([&] { return g_finished.load() == subscribers; }, std::chrono::seconds(60));
  size_t failed = 0;
  uint64_t gaps = 0;
  for (auto& s : subs) {
    if (s->done() && !s->ok()) ++failed;
    gaps += s->gaps();
  }
  std::printf("end calls=%zu ended=%llu not_ok=%zu gaps=%llu stalled=%d\n", subscribers,
              static_cast<unsigned long long>(g_finished.load()), failed, static_cast<unsigned long long>(gaps),
              stalled ? 1 : 0);
  std::fflush(stdout);
  // A reactor gRPC still holds must not be freed; exit without running destructors.
  std::_Exit(stalled || failed || gaps || !ended ? 1 : 0);
}
