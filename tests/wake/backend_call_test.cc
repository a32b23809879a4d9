// examples/backend_call end to end: the real gRPC C++ client calls a uringrpc server whose
// handler calls a real gRPC C++ server (the backend) through gRPC's callback client and
// uringrpc::from_callback. Covers the answer, the backend's error, many calls waiting at
// once on one shard with one offload thread, and a client cancelling while the backend
// still sleeps (the backend call is cancelled too; nothing leaks under ASan).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../../examples/backend_call/frontend_greeter.h"
#include "../common/grpc_test_client.h"

namespace {

using namespace std::chrono_literals;
using helloworld::HelloReply;
using helloworld::HelloRequest;

// The backend: gRPC C++'s own server. "sleep:MS:name" answers after MS milliseconds, or as
// soon as the call is cancelled; "fail:..." answers FAILED_PRECONDITION.
class Backend final : public helloworld::Greeter::Service {
 public:
  grpc::Status SayHello(grpc::ServerContext* ctx, const HelloRequest* req, HelloReply* reply) override {
    started++;
    std::string name = req->name();
    if (name.rfind("fail:", 0) == 0) return {grpc::StatusCode::FAILED_PRECONDITION, "backend says no"};
    if (name.rfind("sleep:", 0) == 0) {
      size_t colon = name.find(':', 6);
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::stoi(name.substr(6, colon - 6)));
      while (std::chrono::steady_clock::now() < until) {
        if (ctx->IsCancelled()) {
          cancelled++;
          return grpc::Status::CANCELLED;
        }
        std::this_thread::sleep_for(2ms);
      }
      name = name.substr(colon + 1);
    }
    reply->set_message("hello " + name);
    return grpc::Status::OK;
  }
  std::atomic<int> started{0};
  std::atomic<int> cancelled{0};
};

class BackendCall : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int backend_port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &backend_port);
    builder.RegisterService(&backend_);
    backend_server_ = builder.BuildAndStart();
    ASSERT_NE(backend_port, 0);
    frontend_ = std::make_unique<example::FrontendGreeter>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(backend_port), grpc::InsecureChannelCredentials()));
    // One shard, one offload thread: calls waiting for the backend must block neither.
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = 1, .offload_threads = 1});
    server_->add_service(*frontend_);
    int port = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
    stub_ = helloworld::Greeter::NewStub(uringrpc::testing::make_channel("127.0.0.1:" + std::to_string(port)));
  }
  void TearDown() override {
    server_->stop(2s);
    server_.reset();
    frontend_.reset();
    backend_server_->Shutdown(std::chrono::system_clock::now() + 2s);
  }
  grpc::Status say(const std::string& name, std::string* message, std::chrono::milliseconds deadline = 10s) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    HelloRequest req;
    req.set_name(name);
    HelloReply reply;
    grpc::Status s = stub_->SayHello(&ctx, req, &reply);
    if (message) *message = reply.message();
    return s;
  }

  Backend backend_;
  std::unique_ptr<grpc::Server> backend_server_;
  std::unique_ptr<example::FrontendGreeter> frontend_;
  std::unique_ptr<uringrpc::Server> server_;
  std::unique_ptr<helloworld::Greeter::Stub> stub_;
};

TEST_F(BackendCall, HandlerAnswersWithTheBackendsReply) {
  std::string message;
  grpc::Status s = say("you", &message);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(message, "frontend: hello you");
  EXPECT_EQ(backend_.started.load(), 1);
}

TEST_F(BackendCall, BackendErrorReachesTheClientWithItsCode) {
  grpc::Status s = say("fail:x", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "backend: backend says no");
}

TEST_F(BackendCall, ClientDeadlineIsPassedToTheBackend) {
  auto t0 = std::chrono::steady_clock::now();
  grpc::Status s = say("sleep:3000:late", nullptr, 300ms);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The backend call ran under the same deadline: it was cancelled too, long before 3 s.
  for (int i = 0; i < 200 && backend_.cancelled == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(backend_.cancelled.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
}

TEST_F(BackendCall, ManyCallsWaitForTheBackendAtOnceOnOneShard) {
  constexpr int kCalls = 24;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) {
    clients.emplace_back([&, i] {
      std::string message;
      if (say("sleep:300:c" + std::to_string(i), &message).ok() && message == "frontend: hello c" + std::to_string(i)) ok++;
    });
  }
  for (auto& c : clients) c.join();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(ok.load(), kCalls);
  // Waiting one after the other (a blocked shard or offload thread) would take 7.2 s.
  EXPECT_LT(took, 3s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

TEST_F(BackendCall, ClientCancellingWhileTheBackendSleepsCancelsTheBackendCall) {
  grpc::ClientContext ctx;
  HelloRequest req;
  req.set_name("sleep:5000:never");
  HelloReply reply;
  std::atomic<bool> done{false};
  grpc::Status status;
  stub_->async()->SayHello(&ctx, &req, &reply, [&](grpc::Status s) {
    status = std::move(s);
    done = true;
  });
  for (int i = 0; i < 500 && backend_.started == 0; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(backend_.started.load(), 1) << "the backend call is under way";
  std::this_thread::sleep_for(50ms);
  ctx.TryCancel();
  for (int i = 0; i < 500 && !done; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_TRUE(done.load());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  // The handler's frame was destroyed mid-await: on_cancel cancelled the backend call,
  // whose late callback then found nobody to resume.
  for (int i = 0; i < 500 && backend_.cancelled == 0; ++i) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(backend_.cancelled.load(), 1);
  // The shard carries on.
  std::string message;
  ASSERT_TRUE(say("after", &message).ok());
  EXPECT_EQ(message, "frontend: hello after");
}

TEST_F(BackendCall, ServerStoppingWhileTheBackendSleepsEndsTheCallAndDropsTheLateAnswer) {
  std::thread client([&] {
    grpc::Status s = say("sleep:400:slow", nullptr);
    EXPECT_FALSE(s.ok());
  });
  for (int i = 0; i < 500 && backend_.started == 0; ++i) std::this_thread::sleep_for(2ms);
  server_->stop();  // immediate: the waiting handler's frame is destroyed
  client.join();
  // The backend call was cancelled or its answer arrives later to a stopped server: safe.
  std::this_thread::sleep_for(500ms);
}

}  // namespace
