// A small blocking wrapper over the real gRPC C++ client (raw bytes, generic stub) for the
// end-to-end and seed tests: every call talks to a real uringrpc server over loopback.
// Every wait is bounded, so a server that never answers fails the test instead of hanging it.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace uringrpc::testing {

using ClientMetadata = std::multimap<std::string, std::string>;

// Insecure (h2c, prior knowledge) channel to "host:port". Each channel gets its own
// subchannel (no sharing with other channels of the test process), so one test's
// connection state never leaks into the next.
std::shared_ptr<grpc::Channel> make_channel(const std::string& target);
// TLS channel trusting `ca_pem`. `server_name_override`, when not empty, is the name the
// server certificate is checked against instead of the target's host.
std::shared_ptr<grpc::Channel> make_tls_channel(const std::string& target, const std::string& ca_pem,
                                                const std::string& server_name_override = "");
// The same with a client certificate (mutual TLS): `cert_chain_pem` and `key_pem` are what the
// client presents when the server asks.
std::shared_ptr<grpc::Channel> make_mtls_channel(const std::string& target, const std::string& ca_pem,
                                                 const std::string& cert_chain_pem,
                                                 const std::string& key_pem,
                                                 const std::string& server_name_override = "");

struct CallResult {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string details;
  std::string error_details;  // grpc::Status::error_details(): grpc-status-details-bin, decoded
  std::vector<std::string> responses;
  std::multimap<std::string, std::string> trailers;
  std::multimap<std::string, std::string> initial_metadata;

  bool ok() const noexcept { return code == grpc::StatusCode::OK; }
};

// "OK", "UNAVAILABLE", ... for assertion messages.
const char* status_code_name(grpc::StatusCode code) noexcept;
// "code=UNAVAILABLE details=\"...\" responses=N" for assertion messages.
std::string describe(const CallResult& r);

// Extra time a wait allows past the call's own deadline before it declares the client (or
// the server) stuck, cancels the call and records a test failure.
inline constexpr std::chrono::seconds kWaitSlack{5};

// One unary call (the client's unary path: message and half-close in one batch).
CallResult unary_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& request,
                      std::chrono::milliseconds timeout = std::chrono::seconds(4),
                      const ClientMetadata& metadata = {});

// The same call issued on its own thread: get() the result later. Used by shutdown tests:
// "call issued, wait until the handler runs, stop the server, look at the call's result".
std::future<CallResult> start_unary_call(std::shared_ptr<grpc::Channel> channel, std::string method,
                                         std::string request,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(4),
                                         ClientMetadata metadata = {});

// A streaming call of any kind (unary, server-, client- or bidi-streaming: the wire is the
// same) driven step by step. One operation at a time; not thread-safe except cancel().
class StreamingCall {
 public:
  StreamingCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                std::chrono::milliseconds timeout = std::chrono::seconds(4),
                const ClientMetadata& metadata = {});
  // Cancels the call if it has not finished and waits for every pending operation.
  ~StreamingCall();
  StreamingCall(const StreamingCall&) = delete;
  StreamingCall& operator=(const StreamingCall&) = delete;

  // False once the call is known to be over (the server ended it, cancel, deadline).
  bool started() const noexcept { return started_; }
  bool write(const std::string& message);
  // The message and the half-close in one step (as a request iterator ending does).
  bool write_last(const std::string& message);
  bool writes_done();
  // The next response, or nullopt once the server is done sending (or the call failed).
  std::optional<std::string> read();
  // Waits for the status. Responses returned by read() are in the result, in order.
  // Calling finish() again returns the same result.
  CallResult finish();
  // ClientContext::TryCancel: thread-safe, may be called while another operation waits.
  void cancel();

 private:
  // Waits for `tag`; false when the operation failed. A wait past the deadline + slack
  // records a test failure, cancels the call and still waits for the tag (bounded).
  bool wait_for(void* tag, const char* what);

  std::chrono::system_clock::time_point deadline_;
  grpc::ClientContext context_;
  grpc::CompletionQueue cq_;
  grpc::GenericStub stub_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool started_ = false;
  bool finished_ = false;
  int pending_ = 0;  // operations handed to gRPC whose tag has not come back
  std::vector<std::string> responses_;
  CallResult result_;
};

}  // namespace uringrpc::testing
