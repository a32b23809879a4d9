// One call of any method through gRPC C++'s generic stub, driven synchronously: serialized
// messages in and out. grpc-call makes the user's call and its reflection stream with it.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace grpccall {

// What every call of one grpc-call run carries.
struct CallOptions {
  std::vector<std::pair<std::string, std::string>> metadata;  // -H 'key: value'
  std::optional<std::chrono::system_clock::time_point> deadline;
};

class GenericCall {
 public:
  // Starts the call of `method` ("/package.Service/Method") on `channel`.
  GenericCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method, const CallOptions& options);
  // Cancels the call if it has not finished, then drains the completion queue.
  ~GenericCall();
  GenericCall(const GenericCall&) = delete;
  GenericCall& operator=(const GenericCall&) = delete;

  // False once the stream is broken: finish() says why.
  bool write(const std::string& message);
  bool writes_done();
  // The next response, or nullopt at the end of the stream (then call finish()).
  std::optional<std::string> read();
  grpc::Status finish();
  // The server's headers and trailers (after finish()).
  const grpc::ClientContext& context() const noexcept { return context_; }

 private:
  bool wait();  // the one operation in flight completes: its ok

  grpc::ClientContext context_;
  grpc::CompletionQueue cq_;
  grpc::GenericStub stub_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool broken_ = false;
  bool finished_ = false;
};

}  // namespace grpccall
