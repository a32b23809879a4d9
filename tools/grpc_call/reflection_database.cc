// ReflectionDatabase (reflection_database.h). Both reflection versions share one wire
// format, so the v1alpha messages serve for v1 too; only the method path differs.
#include "reflection_database.h"

#include "grpc/reflection/v1alpha/reflection.pb.h"

namespace grpccall {

namespace refl = grpc::reflection::v1alpha;

struct ReflectionDatabase::Answer {
  refl::ServerReflectionResponse response;
};

namespace {
constexpr const char* kV1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
constexpr const char* kV1alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
}  // namespace

ReflectionDatabase::ReflectionDatabase(std::shared_ptr<grpc::Channel> channel, CallOptions options)
    : channel_(std::move(channel)), options_(std::move(options)) {}

ReflectionDatabase::~ReflectionDatabase() {
  if (stream_ && !failure_) {
    stream_->writes_done();
    while (stream_->read()) {
    }
    stream_->finish();
  }
}

template <class Fill>
std::optional<ReflectionDatabase::Answer> ReflectionDatabase::ask(Fill fill) {
  if (failure_) return std::nullopt;
  refl::ServerReflectionRequest request;
  fill(request);
  std::string bytes = request.SerializeAsString();
  for (;;) {
    if (!stream_) stream_ = std::make_unique<GenericCall>(channel_, v1alpha_ ? kV1alpha : kV1, options_);
    std::optional<std::string> reply;
    if (stream_->write(bytes)) reply = stream_->read();
    Answer answer;
    if (reply && answer.response.ParseFromString(*reply)) return answer;
    grpc::Status status = reply ? grpc::Status(grpc::StatusCode::INTERNAL, "reflection response does not parse")
                                : stream_->finish();
    stream_.reset();
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && !v1alpha_) {
      v1alpha_ = true;  // an older server: ask again in v1alpha
      continue;
    }
    failure_ = status;
    return std::nullopt;
  }
}

std::optional<std::vector<std::string>> ReflectionDatabase::list_services() {
  auto answer = ask([](refl::ServerReflectionRequest& r) { r.set_list_services(""); });
  if (!answer) return std::nullopt;
  const auto& response = answer->response;
  if (response.has_error_response()) {
    failure_ = grpc::Status(static_cast<grpc::StatusCode>(response.error_response().error_code()),
                            response.error_response().error_message());
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  return names;
}

bool ReflectionDatabase::take_files(const Answer& answer, google::protobuf::FileDescriptorProto* output) {
  // error_response (NOT_FOUND): the server does not know it, which is no failure of the RPC.
  if (!answer.response.has_file_descriptor_response()) return false;
  bool first = true;
  for (const std::string& bytes : answer.response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) continue;
    if (first) *output = file;
    first = false;
    files_.emplace(file.name(), std::move(file));
  }
  return !first;
}

bool ReflectionDatabase::FindFileByName(const std::string& filename, google::protobuf::FileDescriptorProto* output) {
  if (auto it = files_.find(filename); it != files_.end()) {
    *output = it->second;
    return true;
  }
  auto answer = ask([&](refl::ServerReflectionRequest& r) { r.set_file_by_filename(filename); });
  return answer && take_files(*answer, output);
}

bool ReflectionDatabase::FindFileContainingSymbol(const std::string& symbol_name,
                                                  google::protobuf::FileDescriptorProto* output) {
  auto answer = ask([&](refl::ServerReflectionRequest& r) { r.set_file_containing_symbol(symbol_name); });
  return answer && take_files(*answer, output);
}

bool ReflectionDatabase::FindFileContainingExtension(const std::string& containing_type, int field_number,
                                                     google::protobuf::FileDescriptorProto* output) {
  auto answer = ask([&](refl::ServerReflectionRequest& r) {
    r.mutable_file_containing_extension()->set_containing_type(containing_type);
    r.mutable_file_containing_extension()->set_extension_number(field_number);
  });
  return answer && take_files(*answer, output);
}

}  // namespace grpccall
