// FrontendGreeter::SayHello: one backend call through gRPC C++'s callback API, awaited with
// uringrpc::from_callback. See frontend_greeter.h.
#include "frontend_greeter.h"

#include <chrono>
#include <string>

namespace example {

uringrpc::Task<helloworld::HelloReply> FrontendGreeter::SayHello(helloworld::HelloRequest request,
                                                                 uringrpc::ServerContext& ctx) {
  // What gRPC writes into must live until its callback has run, not as long as this frame:
  // when our client cancels, the frame is destroyed while the backend call goes on. The
  // callback shares it, and on_cancel below tells the backend to stop.
  struct BackendCall {
    grpc::ClientContext context;
    helloworld::HelloRequest request;
    helloworld::HelloReply reply;
  };
  auto call = std::make_shared<BackendCall>();
  call->request.set_name(request.name());
  if (auto deadline = ctx.deadline()) {  // gRPC takes a system_clock deadline
    call->context.set_deadline(std::chrono::system_clock::now() + (*deadline - std::chrono::steady_clock::now()));
  }
  // Bound to a local, then awaited: g++ 12 destroys a lambda that captures a local by copy
  // (on_cancel's [call]) twice when it is written inside the co_await expression itself.
  auto backend = uringrpc::from_callback<grpc::Status>(
      [&](uringrpc::Completion<grpc::Status> done) {
        // Runs on a gRPC thread when the backend answers; done() resumes us on our shard.
        stub_->async()->SayHello(&call->context, &call->request, &call->reply,
                                 [call, done](grpc::Status s) { done(std::move(s)); });
      },
      [call] { call->context.TryCancel(); });  // on our shard, if this call is cancelled first
  grpc::Status status = co_await backend;
  if (!status.ok()) {
    co_return uringrpc::Status{static_cast<uringrpc::StatusCode>(status.error_code()),
                               "backend: " + status.error_message()};
  }
  helloworld::HelloReply reply;
  reply.set_message("frontend: " + call->reply.message());
  co_return reply;
}

}  // namespace example
