// gRPC C++ anchor of HttpArena's gRPC unary profile (perf/getsum_bench.py):
// benchmark.BenchmarkService/GetSum from perf/proto/benchmark.proto on Debian's gRPC C++ 1.51,
// written the way gRPC's own documentation and benchmarks serve unary calls fast. Usage:
//   getsum-grpc-cpp-server --port N [--api async|callback] [--prepost K]
// "async" (default): the completion-queue API as gRPC's qps benchmark server runs it
// (test/cpp/qps/server_async.cc): one CQ and one polling thread per CPU of the process's
// affinity mask, K call objects pre-posted in all (default 10,000, the qps server's figure;
// spread over the CQs), each reused for the next call once its reply is sent.
// "callback": the reactor API gRPC's performance guide recommends for new code, with the
// library's default threads (no pre-posting: the library creates a reactor per call).
// Every other setting is gRPC's default, as the profile's rules ask.
#include <sched.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include "benchmark.grpc.pb.h"
#include "stop_waiter.h"

using benchmark::BenchmarkService;
using benchmark::SumReply;
using benchmark::SumRequest;

namespace {

// ---- completion-queue (async) API

struct Tag {
  virtual ~Tag() = default;
  virtual void proceed(bool ok) = 0;
};

// Set before the server shuts down: finished calls stop re-posting themselves.
std::atomic<bool> g_stopping{false};

// One GetSum call at a time: requested, answered, then reused for the next call.
class GetSumCall final : public Tag {
 public:
  GetSumCall(BenchmarkService::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq) {
    post();
  }

  void proceed(bool ok) override {
    if (!answered_ && ok) {
      reply_.set_result(request_.a() + request_.b());
      answered_ = true;
      responder_->Finish(reply_, grpc::Status::OK, this);
      return;
    }
    // A request cancelled by shutdown (ok false before an answer), or a stop under way.
    if (!answered_ || g_stopping.load(std::memory_order_relaxed)) {
      delete this;
      return;
    }
    post();
  }

 private:
  void post() {
    answered_ = false;
    request_.Clear();
    reply_.Clear();
    ctx_.emplace();  // a ServerContext serves one call only
    responder_.emplace(&*ctx_);
    service_->RequestGetSum(&*ctx_, &request_, &*responder_, cq_, cq_, this);
  }

  BenchmarkService::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  bool answered_ = false;
  SumRequest request_;
  SumReply reply_;
  std::optional<grpc::ServerContext> ctx_;
  std::optional<grpc::ServerAsyncResponseWriter<SumReply>> responder_;
};

// Delivered through an Alarm on each CQ, so that a CQ is shut down on the one thread that
// posts requests to it.
struct ShutdownTag final : Tag {
  grpc::ServerCompletionQueue* cq = nullptr;
  void proceed(bool) override { cq->Shutdown(); }
};

// ---- callback (reactor) API

class CallbackSum final : public BenchmarkService::CallbackService {
  grpc::ServerUnaryReactor* GetSum(grpc::CallbackServerContext* ctx, const SumRequest* request,
                                   SumReply* reply) override {
    reply->set_result(request->a() + request->b());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// ---- main

unsigned affinity_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

bool parse_number(const char* text, unsigned& out) {
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --port N [--api async|callback] [--prepost K]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bench::block_stop_signals();  // before gRPC starts its threads: they inherit the mask
  unsigned port = 0, prepost = 10000;
  bool have_port = false;
  std::string api = "async";
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    const char* value = argv[++i];
    if (flag == "--port" && parse_number(value, port) && port < 65536) {
      have_port = true;
    } else if (flag == "--prepost" && parse_number(value, prepost) && prepost > 0) {
    } else if (flag == "--api" && (value == std::string_view("async") ||
                                   value == std::string_view("callback"))) {
      api = value;
    } else {
      return usage(argv[0]);
    }
  }
  if (!have_port) return usage(argv[0]);

  BenchmarkService::AsyncService async_service;
  CallbackSum callback_service;
  grpc::ServerBuilder builder;
  int bound = 0;
  // Loopback only, and the same address in every server of the benchmark.
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (api == "async") {
    builder.RegisterService(&async_service);
    for (unsigned i = 0, n = affinity_cpus(); i < n; ++i) cqs.push_back(builder.AddCompletionQueue());
  } else {
    builder.RegisterService(&callback_service);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1:%u\n", port);
    return 1;
  }
  for (unsigned i = 0; i < prepost && !cqs.empty(); ++i) {
    new GetSumCall(&async_service, cqs[i % cqs.size()].get());
  }
  std::cout << "listening on " << bound << std::endl;  // endl flushes: the runner waits for it

  std::vector<ShutdownTag> shutdown_tags(cqs.size());
  std::vector<grpc::Alarm> shutdown_alarms(cqs.size());
  std::thread stopper([&] {
    bench::wait_for_stop();
    g_stopping.store(true);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    for (size_t i = 0; i < cqs.size(); ++i) {
      shutdown_tags[i].cq = cqs[i].get();
      shutdown_alarms[i].Set(cqs[i].get(), gpr_now(GPR_CLOCK_MONOTONIC), &shutdown_tags[i]);
    }
  });

  std::vector<std::thread> pollers;
  for (auto& cq : cqs) {
    pollers.emplace_back([cq = cq.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->proceed(ok);
    });
  }
  if (cqs.empty()) server->Wait();
  for (auto& t : pollers) t.join();
  stopper.join();
  return 0;
}
