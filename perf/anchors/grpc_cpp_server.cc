// gRPC C++ anchor of the benchmark (perf/): the same four grpc.testing.TestService methods and
// the same work per call as perf/bench_server.cc, on Debian's gRPC C++ 1.51. Usage:
//   grpc-cpp-server --port N [--api async|callback] [--prepost K] [--tls-cert F --tls-key F]
//                   [--compression none|gzip|deflate]
// --compression is the server's default response compression (ServerBuilder::
// SetDefaultCompressionAlgorithm), applied to clients that accept it, as bench-server's is.
// "async" (default) is the completion-queue API in its fastest shape for one core: one CQ,
// one polling thread, K requests pre-posted per method and each call object reused for the
// next call (as gRPC's own qps benchmark server does). "callback" is the reactor API.
// K defaults to 100: callgrind counted ~55.7k instructions per EmptyCall at K=100, 59.5k at
// 160 and 64.7k at 256 (1 connection x 100 streams), so K is best at the number of calls in
// flight; pass --prepost 160 for 16 x 10.
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include "grpc/testing/test.grpc.pb.h"
#include "stop_waiter.h"

namespace gt = grpc::testing;
using TestService = gt::TestService;

namespace {

// Every server in the benchmark fills payloads the same way: `size` zero bytes.
void fill_payload(gt::Payload* payload, int32_t size) {
  payload->mutable_body()->assign(size > 0 ? static_cast<size_t>(size) : 0, '\0');
}

// ---- completion-queue (async) API

// Every tag on the CQ is a Tag; proceed() advances its state machine.
struct Tag {
  virtual ~Tag() = default;
  virtual void proceed(bool ok) = 0;
};

// Set before the server shuts down: finished calls stop re-posting themselves.
std::atomic<bool> g_stopping{false};

// A unary method (EmptyCall, UnaryCall): requested, then finished; then reused for the next.
template <class Req, class Resp>
class UnaryCallData final : public Tag {
 public:
  using RequestFn = void (TestService::AsyncService::*)(grpc::ServerContext*, Req*,
                                                        grpc::ServerAsyncResponseWriter<Resp>*,
                                                        grpc::CompletionQueue*,
                                                        grpc::ServerCompletionQueue*, void*);
  using HandleFn = void (*)(const Req&, Resp&);

  UnaryCallData(TestService::AsyncService* service, grpc::ServerCompletionQueue* cq,
                RequestFn request, HandleFn handle)
      : service_(service), cq_(cq), request_fn_(request), handle_(handle) {
    post();
  }

  void proceed(bool ok) override {
    if (!finishing_ && ok) {
      handle_(request_, response_);
      finishing_ = true;
      responder_->Finish(response_, grpc::Status::OK, this);
      return;
    }
    // Finished (or the request failed at shutdown): reuse this object for the next call.
    if (!ok && !finishing_) {  // a pending request cancelled by shutdown
      delete this;
      return;
    }
    if (g_stopping.load(std::memory_order_relaxed)) {
      delete this;
      return;
    }
    post();
  }

 private:
  void post() {
    finishing_ = false;
    request_.Clear();
    response_.Clear();
    // A ServerContext serves one call only; emplace builds a fresh one in place.
    ctx_.emplace();
    responder_.emplace(&*ctx_);
    (service_->*request_fn_)(&*ctx_, &request_, &*responder_, cq_, cq_, this);
  }

  TestService::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  RequestFn request_fn_;
  HandleFn handle_;
  bool finishing_ = false;
  Req request_;
  Resp response_;
  std::optional<grpc::ServerContext> ctx_;
  std::optional<grpc::ServerAsyncResponseWriter<Resp>> responder_;
};

void handle_empty(const gt::Empty&, gt::Empty&) {}
void handle_unary(const gt::SimpleRequest& req, gt::SimpleResponse& resp) {
  fill_payload(resp.mutable_payload(), req.response_size());
}

// StreamingOutputCall: one write in flight at a time (the API allows no more); the last
// message goes out with the status in one batch (WriteAndFinish).
class StreamingOutputCallData final : public Tag {
 public:
  StreamingOutputCallData(TestService::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq) {
    post();
  }

  void proceed(bool ok) override {
    switch (state_) {
      case State::kRequested:
        if (!ok) {
          delete this;
          return;
        }
        next_ = 0;
        write_next();
        return;
      case State::kWriting:
        if (!ok) {  // the client went away: finish anyway so the call is released
          state_ = State::kFinishing;
          writer_->Finish(grpc::Status::CANCELLED, this);
          return;
        }
        write_next();
        return;
      case State::kFinishing:
        if (g_stopping.load(std::memory_order_relaxed)) {
          delete this;
          return;
        }
        post();
        return;
    }
  }

 private:
  enum class State { kRequested, kWriting, kFinishing };

  void post() {
    state_ = State::kRequested;
    request_.Clear();
    ctx_.emplace();
    writer_.emplace(&*ctx_);
    service_->RequestStreamingOutputCall(&*ctx_, &request_, &*writer_, cq_, cq_, this);
  }

  void write_next() {
    int count = request_.response_parameters_size();
    if (next_ >= count) {
      state_ = State::kFinishing;
      writer_->Finish(grpc::Status::OK, this);
      return;
    }
    response_.Clear();
    fill_payload(response_.mutable_payload(), request_.response_parameters(next_).size());
    ++next_;
    if (next_ == count) {
      state_ = State::kFinishing;
      writer_->WriteAndFinish(response_, grpc::WriteOptions(), grpc::Status::OK, this);
    } else {
      state_ = State::kWriting;
      writer_->Write(response_, this);
    }
  }

  TestService::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  State state_ = State::kRequested;
  int next_ = 0;
  gt::StreamingOutputCallRequest request_;
  gt::StreamingOutputCallResponse response_;
  std::optional<grpc::ServerContext> ctx_;
  std::optional<grpc::ServerAsyncWriter<gt::StreamingOutputCallResponse>> writer_;
};

// StreamingInputCall: read until the client half-closes, then answer the total size.
class StreamingInputCallData final : public Tag {
 public:
  StreamingInputCallData(TestService::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq) {
    post();
  }

  void proceed(bool ok) override {
    switch (state_) {
      case State::kRequested:
        if (!ok) {
          delete this;
          return;
        }
        total_ = 0;
        state_ = State::kReading;
        reader_->Read(&request_, this);
        return;
      case State::kReading:
        if (ok) {
          total_ += static_cast<int64_t>(request_.payload().body().size());
          reader_->Read(&request_, this);
          return;
        }
        // ok == false: the client half-closed (or went away); answer either way.
        state_ = State::kFinishing;
        response_.set_aggregated_payload_size(static_cast<int32_t>(total_));
        reader_->Finish(response_, grpc::Status::OK, this);
        return;
      case State::kFinishing:
        if (g_stopping.load(std::memory_order_relaxed)) {
          delete this;
          return;
        }
        post();
        return;
    }
  }

 private:
  enum class State { kRequested, kReading, kFinishing };

  void post() {
    state_ = State::kRequested;
    request_.Clear();
    response_.Clear();
    ctx_.emplace();
    reader_.emplace(&*ctx_);
    service_->RequestStreamingInputCall(&*ctx_, &*reader_, cq_, cq_, this);
  }

  TestService::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  State state_ = State::kRequested;
  int64_t total_ = 0;
  gt::StreamingInputCallRequest request_;
  gt::StreamingInputCallResponse response_;
  std::optional<grpc::ServerContext> ctx_;
  std::optional<grpc::ServerAsyncReader<gt::StreamingInputCallResponse,
                                        gt::StreamingInputCallRequest>>
      reader_;
};

// The shutdown request reaches the polling thread as this tag (through an Alarm), so that
// the CQ is shut down on the only thread that ever posts requests to it.
struct ShutdownTag final : Tag {
  grpc::ServerCompletionQueue* cq;
  void proceed(bool) override {
    cq->Shutdown();
  }
};

// ---- callback (reactor) API

class CallbackTestService final : public TestService::CallbackService {
  grpc::ServerUnaryReactor* EmptyCall(grpc::CallbackServerContext* ctx, const gt::Empty*,
                                      gt::Empty*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* UnaryCall(grpc::CallbackServerContext* ctx,
                                      const gt::SimpleRequest* request,
                                      gt::SimpleResponse* response) override {
    fill_payload(response->mutable_payload(), request->response_size());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  class OutputWriter final : public grpc::ServerWriteReactor<gt::StreamingOutputCallResponse> {
   public:
    explicit OutputWriter(const gt::StreamingOutputCallRequest* request) : request_(request) {
      next();
    }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::CANCELLED);
        return;
      }
      next();
    }
    void OnDone() override { delete this; }

   private:
    void next() {
      int count = request_->response_parameters_size();
      if (next_ >= count) {
        Finish(grpc::Status::OK);
        return;
      }
      response_.Clear();
      fill_payload(response_.mutable_payload(), request_->response_parameters(next_).size());
      ++next_;
      if (next_ == count) {
        StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
      } else {
        StartWrite(&response_);
      }
    }
    const gt::StreamingOutputCallRequest* request_;
    gt::StreamingOutputCallResponse response_;
    int next_ = 0;
  };

  grpc::ServerWriteReactor<gt::StreamingOutputCallResponse>* StreamingOutputCall(
      grpc::CallbackServerContext*, const gt::StreamingOutputCallRequest* request) override {
    return new OutputWriter(request);
  }

  class InputReader final : public grpc::ServerReadReactor<gt::StreamingInputCallRequest> {
   public:
    explicit InputReader(gt::StreamingInputCallResponse* response) : response_(response) {
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (ok) {
        total_ += static_cast<int64_t>(request_.payload().body().size());
        StartRead(&request_);
        return;
      }
      response_->set_aggregated_payload_size(static_cast<int32_t>(total_));
      Finish(grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    gt::StreamingInputCallRequest request_;
    gt::StreamingInputCallResponse* response_;
    int64_t total_ = 0;
  };

  grpc::ServerReadReactor<gt::StreamingInputCallRequest>* StreamingInputCall(
      grpc::CallbackServerContext*, gt::StreamingInputCallResponse* response) override {
    return new InputReader(response);
  }
};

// ---- main

bool parse_number(const char* text, unsigned& out) {
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --port N [--api async|callback] [--prepost K] "
               "[--tls-cert FILE --tls-key FILE] [--compression none|gzip|deflate]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything starts gRPC and its threads (making credentials does): they inherit it.
  bench::block_stop_signals();
  unsigned port = 0, prepost = 100;
  bool have_port = false;
  std::string api = "async", tls_cert, tls_key;
  grpc_compression_algorithm compression = GRPC_COMPRESS_NONE;
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
    } else if (flag == "--compression" && (value == std::string_view("none") ||
                                           value == std::string_view("gzip") ||
                                           value == std::string_view("deflate"))) {
      compression = value == std::string_view("gzip")      ? GRPC_COMPRESS_GZIP
                    : value == std::string_view("deflate") ? GRPC_COMPRESS_DEFLATE
                                                           : GRPC_COMPRESS_NONE;
    } else if (flag == "--tls-cert") {
      tls_cert = value;
    } else if (flag == "--tls-key") {
      tls_key = value;
    } else {
      return usage(argv[0]);
    }
  }
  if (!have_port || tls_cert.empty() != tls_key.empty()) return usage(argv[0]);

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!tls_cert.empty()) {
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!read_file(tls_cert, pair.cert_chain) || !read_file(tls_key, pair.private_key)) {
      std::fprintf(stderr, "cannot read %s or %s\n", tls_cert.c_str(), tls_key.c_str());
      return 1;
    }
    grpc::SslServerCredentialsOptions options;
    options.pem_key_cert_pairs.push_back(std::move(pair));
    credentials = grpc::SslServerCredentials(options);
  }

  TestService::AsyncService async_service;
  CallbackTestService callback_service;
  grpc::ServerBuilder builder;
  if (compression != GRPC_COMPRESS_NONE) builder.SetDefaultCompressionAlgorithm(compression);
  int bound = 0;
  // Loopback only, and the same address in every server of the benchmark.
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), credentials, &bound);
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  if (api == "async") {
    builder.RegisterService(&async_service);
    cq = builder.AddCompletionQueue();
  } else {
    builder.RegisterService(&callback_service);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1:%u\n", port);
    return 1;
  }

  ShutdownTag shutdown_tag;
  shutdown_tag.cq = cq.get();
  grpc::Alarm shutdown_alarm;
  if (cq) {
    using Service = TestService::AsyncService;
    for (unsigned i = 0; i < prepost; ++i) {
      new UnaryCallData<gt::Empty, gt::Empty>(&async_service, cq.get(),
                                              &Service::RequestEmptyCall, handle_empty);
      new UnaryCallData<gt::SimpleRequest, gt::SimpleResponse>(
          &async_service, cq.get(), &Service::RequestUnaryCall, handle_unary);
      new StreamingOutputCallData(&async_service, cq.get());
      new StreamingInputCallData(&async_service, cq.get());
    }
  }
  std::cout << "listening on " << bound << std::endl;  // endl flushes: the runner waits for it

  std::thread stopper([&] {
    bench::wait_for_stop();
    g_stopping.store(true);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (cq) shutdown_alarm.Set(cq.get(), gpr_now(GPR_CLOCK_MONOTONIC), &shutdown_tag);
  });

  if (cq) {
    void* tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->proceed(ok);
  } else {
    server->Wait();
  }
  stopper.join();
  return 0;
}
