// Blocking helpers over the real gRPC C++ client for the end-to-end and seed tests. Every
// operation waits on a private CompletionQueue with a bounded deadline; see the header.
#include "grpc_test_client.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <utility>

namespace uringrpc::testing {

namespace {

// gRPC's default DNS resolver is c-ares, whose system library leaks 50 small blocks per
// process: LeakSanitizer then fails every SANITIZE=1 test binary. The native resolver
// (getaddrinfo) resolves "localhost" just as well. Set before main, so before gRPC reads it
// at its first init; an explicit GRPC_DNS_RESOLVER in the environment still wins.
const bool kNativeResolverChosen = [] { return setenv("GRPC_DNS_RESOLVER", "native", 0) == 0; }();

// Distinct tags per operation kind: with one operation in flight at a time a tag names it.
char kStartTag, kWriteTag, kWritesDoneTag, kReadTag, kFinishTag, kUnaryTag;

grpc::ChannelArguments base_arguments() {
  grpc::ChannelArguments args;
  // A private subchannel pool: channels of different tests never share a connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

grpc::ByteBuffer to_buffer(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

std::string to_string(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::multimap<std::string, std::string> copy_metadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
  std::multimap<std::string, std::string> out;
  for (const auto& [k, v] : md) out.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  return out;
}

void prepare_context(grpc::ClientContext& ctx, std::chrono::system_clock::time_point deadline,
                     const ClientMetadata& metadata) {
  ctx.set_deadline(deadline);
  for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
}

// Waits for `want` on `cq`. On a timeout past `deadline` records a failure, cancels through
// `ctx` and waits again; gRPC completes every operation promptly once cancelled, so the
// second wait not ending means the client library itself is wedged: abort loudly.
bool wait_tag(grpc::CompletionQueue& cq, grpc::ClientContext& ctx, void* want,
              std::chrono::system_clock::time_point deadline, const char* what, int& pending) {
  bool cancelled = false;
  for (;;) {
    void* tag = nullptr;
    bool ok = false;
    auto limit = cancelled ? std::chrono::system_clock::now() + std::chrono::seconds(30) : deadline;
    switch (cq.AsyncNext(&tag, &ok, limit)) {
      case grpc::CompletionQueue::GOT_EVENT:
        --pending;
        if (tag == want) return ok;
        break;  // a stray completion of an earlier, abandoned operation
      case grpc::CompletionQueue::TIMEOUT:
        if (cancelled) {
          std::fprintf(stderr, "grpc_test_client: %s still pending 30 s after TryCancel\n", what);
          std::abort();
        }
        ADD_FAILURE() << "gRPC client: " << what
                      << " did not complete within the call's deadline + " << kWaitSlack.count()
                      << " s; cancelling the call";
        ctx.TryCancel();
        cancelled = true;
        break;
      case grpc::CompletionQueue::SHUTDOWN:
        return false;
    }
  }
}

void drain_and_shutdown(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace

std::shared_ptr<grpc::Channel> make_channel(const std::string& target) {
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), base_arguments());
}

std::shared_ptr<grpc::Channel> make_tls_channel(const std::string& target, const std::string& ca_pem,
                                                const std::string& server_name_override) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem;
  auto args = base_arguments();
  if (!server_name_override.empty()) args.SetSslTargetNameOverride(server_name_override);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), args);
}

std::shared_ptr<grpc::Channel> make_mtls_channel(const std::string& target, const std::string& ca_pem,
                                                 const std::string& cert_chain_pem,
                                                 const std::string& key_pem,
                                                 const std::string& server_name_override) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem;
  options.pem_cert_chain = cert_chain_pem;
  options.pem_private_key = key_pem;
  auto args = base_arguments();
  if (!server_name_override.empty()) args.SetSslTargetNameOverride(server_name_override);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), args);
}

const char* status_code_name(grpc::StatusCode code) noexcept {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

std::string describe(const CallResult& r) {
  std::ostringstream os;
  os << "code=" << status_code_name(r.code) << " details=\"" << r.details
     << "\" responses=" << r.responses.size();
  return os.str();
}

CallResult unary_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& request, std::chrono::milliseconds timeout,
                      const ClientMetadata& metadata) {
  auto deadline = std::chrono::system_clock::now() + timeout;
  grpc::ClientContext ctx;
  prepare_context(ctx, deadline, metadata);
  grpc::CompletionQueue cq;
  grpc::GenericStub stub(channel);
  CallResult result;
  {
    auto reader = stub.PrepareUnaryCall(&ctx, method, to_buffer(request), &cq);
    reader->StartCall();
    grpc::ByteBuffer response;
    grpc::Status status;
    reader->Finish(&response, &status, &kUnaryTag);
    int pending = 1;
    wait_tag(cq, ctx, &kUnaryTag, deadline + kWaitSlack, "unary call", pending);
    result.code = status.error_code();
    result.details = status.error_message();
    result.error_details = status.error_details();
    if (status.ok()) result.responses.push_back(to_string(response));
    result.initial_metadata = copy_metadata(ctx.GetServerInitialMetadata());
    result.trailers = copy_metadata(ctx.GetServerTrailingMetadata());
  }
  drain_and_shutdown(cq);
  return result;
}

std::future<CallResult> start_unary_call(std::shared_ptr<grpc::Channel> channel, std::string method,
                                         std::string request, std::chrono::milliseconds timeout,
                                         ClientMetadata metadata) {
  return std::async(std::launch::async, [channel = std::move(channel), method = std::move(method),
                                         request = std::move(request), timeout,
                                         metadata = std::move(metadata)] {
    return unary_call(channel, method, request, timeout, metadata);
  });
}

StreamingCall::StreamingCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                             std::chrono::milliseconds timeout, const ClientMetadata& metadata)
    : deadline_(std::chrono::system_clock::now() + timeout), stub_(channel) {
  prepare_context(context_, deadline_, metadata);
  call_ = stub_.PrepareCall(&context_, method, &cq_);
  call_->StartCall(&kStartTag);
  ++pending_;
  started_ = wait_for(&kStartTag, "StartCall");
}

StreamingCall::~StreamingCall() {
  if (!finished_) {
    context_.TryCancel();
    finish();
  }
  call_.reset();
  drain_and_shutdown(cq_);
}

bool StreamingCall::wait_for(void* tag, const char* what) {
  return wait_tag(cq_, context_, tag, deadline_ + kWaitSlack, what, pending_);
}

bool StreamingCall::write(const std::string& message) {
  if (finished_) return false;
  call_->Write(to_buffer(message), &kWriteTag);
  ++pending_;
  return wait_for(&kWriteTag, "Write");
}

bool StreamingCall::write_last(const std::string& message) {
  if (finished_) return false;
  call_->WriteLast(to_buffer(message), grpc::WriteOptions(), &kWriteTag);
  ++pending_;
  return wait_for(&kWriteTag, "WriteLast");
}

bool StreamingCall::writes_done() {
  if (finished_) return false;
  call_->WritesDone(&kWritesDoneTag);
  ++pending_;
  return wait_for(&kWritesDoneTag, "WritesDone");
}

std::optional<std::string> StreamingCall::read() {
  if (finished_) return std::nullopt;
  grpc::ByteBuffer buffer;
  call_->Read(&buffer, &kReadTag);
  ++pending_;
  if (!wait_for(&kReadTag, "Read")) return std::nullopt;
  responses_.push_back(to_string(buffer));
  return responses_.back();
}

CallResult StreamingCall::finish() {
  if (finished_) return result_;
  grpc::Status status;
  call_->Finish(&status, &kFinishTag);
  ++pending_;
  wait_for(&kFinishTag, "Finish");
  finished_ = true;
  result_.code = status.error_code();
  result_.details = status.error_message();
  result_.error_details = status.error_details();
  result_.responses = responses_;
  result_.initial_metadata = copy_metadata(context_.GetServerInitialMetadata());
  result_.trailers = copy_metadata(context_.GetServerTrailingMetadata());
  return result_;
}

void StreamingCall::cancel() { context_.TryCancel(); }

}  // namespace uringrpc::testing
