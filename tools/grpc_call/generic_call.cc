// GenericCall (generic_call.h): each operation is started on the async generic stub and
// waited for on the call's own completion queue, one at a time.
#include "generic_call.h"

namespace grpccall {

namespace {
void* const kTag = reinterpret_cast<void*>(1);  // one operation at a time: one tag
}

GenericCall::GenericCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                         const CallOptions& options)
    : stub_(channel) {
  for (const auto& [key, value] : options.metadata) context_.AddMetadata(key, value);
  if (options.deadline) context_.set_deadline(*options.deadline);
  call_ = stub_.PrepareCall(&context_, method, &cq_);
  call_->StartCall(kTag);
  broken_ = !wait();
}

GenericCall::~GenericCall() {
  if (!finished_) {
    context_.TryCancel();
    finish();
  }
  cq_.Shutdown();
  void* tag;
  bool ok;
  while (cq_.Next(&tag, &ok)) {
  }
}

bool GenericCall::wait() {
  void* tag;
  bool ok = false;
  return cq_.Next(&tag, &ok) && ok;
}

bool GenericCall::write(const std::string& message) {
  if (broken_) return false;
  grpc::Slice slice(message);
  grpc::ByteBuffer buffer(&slice, 1);
  call_->Write(buffer, kTag);
  return !(broken_ = !wait());
}

bool GenericCall::writes_done() {
  if (broken_) return false;
  call_->WritesDone(kTag);
  return !(broken_ = !wait());
}

std::optional<std::string> GenericCall::read() {
  grpc::ByteBuffer buffer;
  call_->Read(&buffer, kTag);
  if (!wait()) return std::nullopt;
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return std::nullopt;
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::Status GenericCall::finish() {
  grpc::Status status;
  call_->Finish(&status, kTag);
  wait();
  finished_ = true;
  return status;
}

}  // namespace grpccall
