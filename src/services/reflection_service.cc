// ReflectionService (uringrpc/reflection.h): the ServerReflectionInfo stream of
// grpc.reflection.v1 and v1alpha, from classes our plugin generates from Debian's
// grpc-proto. Both versions have the same messages, so one template answers for both.
#include <google/protobuf/descriptor.h>

#include <mutex>
#include <stdexcept>

#include "grpc/reflection/v1/reflection.uringrpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.uringrpc.pb.h"
#include "services/reflection_index.h"
#include "uringrpc/reflection.h"

namespace uringrpc {

namespace {

// One answer to one request, in the words gRPC C++'s reflection server uses for errors.
template <class Request, class Response>
Response answer(const services::ReflectionIndex& index, const Request& request) {
  Response response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  auto not_found = [&](std::string what) {
    response.mutable_error_response()->set_error_code(static_cast<int>(StatusCode::NOT_FOUND));
    response.mutable_error_response()->set_error_message(std::move(what));
  };
  auto send_file = [&](const google::protobuf::FileDescriptor* file, const char* missing) {
    if (!file) return not_found(missing);
    auto* files = response.mutable_file_descriptor_response();
    for (std::string& bytes : index.file_and_dependencies(file)) files->add_file_descriptor_proto(std::move(bytes));
  };
  switch (request.message_request_case()) {
    case Request::kFileByFilename:
      send_file(index.file_by_name(request.file_by_filename()), "File not found.");
      break;
    case Request::kFileContainingSymbol:
      send_file(index.file_containing_symbol(request.file_containing_symbol()), "Symbol not found.");
      break;
    case Request::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const google::protobuf::Descriptor* type = index.message_type(ext.containing_type());
      if (!type) return not_found("Type not found."), response;
      const google::protobuf::FieldDescriptor* found = nullptr;
      for (const auto* e : index.extensions_of(type)) {
        if (e->number() == ext.extension_number()) found = e;
      }
      send_file(found ? found->file() : nullptr, "Extension not found.");
      break;
    }
    case Request::kAllExtensionNumbersOfType: {
      const google::protobuf::Descriptor* type = index.message_type(request.all_extension_numbers_of_type());
      if (!type) return not_found("Type not found."), response;
      auto* numbers = response.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const auto* e : index.extensions_of(type)) numbers->add_extension_number(e->number());
      break;
    }
    case Request::kListServices:
      for (const std::string& name : index.service_names()) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    default:  // no request set, or one newer than this .proto
      response.mutable_error_response()->set_error_code(static_cast<int>(StatusCode::UNIMPLEMENTED));
      response.mutable_error_response()->set_error_message("no message_request in ServerReflectionRequest");
      break;
  }
  return response;
}

}  // namespace

struct ReflectionService::Impl {
  // The index of server->services(), made at the first request: services added after the
  // reflection service are in it, and the list no longer changes once the server runs.
  const services::ReflectionIndex& index() {
    std::call_once(built, [this] { index_ = std::make_unique<services::ReflectionIndex>(server->services()); });
    return *index_;
  }

  template <class Base, class Request, class Response>
  class Version final : public Base {
   public:
    explicit Version(Impl& impl) : impl_(impl) {}
    Stream<Response> ServerReflectionInfo(Reader<Request>& requests, ServerContext&) override {
      const services::ReflectionIndex& index = impl_.index();
      while (auto request = co_await requests.next()) co_yield answer<Request, Response>(index, *request);
    }

   private:
    Impl& impl_;
  };

  Server* server = nullptr;
  std::once_flag built;
  std::unique_ptr<services::ReflectionIndex> index_;
  Version<grpc::reflection::v1::ServerReflectionService, grpc::reflection::v1::ServerReflectionRequest,
          grpc::reflection::v1::ServerReflectionResponse>
      v1{*this};
  Version<grpc::reflection::v1alpha::ServerReflectionService, grpc::reflection::v1alpha::ServerReflectionRequest,
          grpc::reflection::v1alpha::ServerReflectionResponse>
      v1alpha{*this};
};

ReflectionService::ReflectionService() : impl_(std::make_unique<Impl>()) {}
ReflectionService::~ReflectionService() = default;

void ReflectionService::register_methods(Server& server) {
  if (impl_->server) throw std::logic_error("uringrpc::ReflectionService: already added to a server");
  impl_->server = &server;
  impl_->v1.register_methods(server);
  impl_->v1alpha.register_methods(server);
}

}  // namespace uringrpc
