// Server's list of services added from generated code (server.h: add_service_descriptor,
// services()). Generated register_methods() fills it; server reflection will read it.
#include <stdexcept>

#include "uringrpc/server.h"

namespace uringrpc {

void Server::add_service_descriptor(std::string full_name, const google::protobuf::ServiceDescriptor* descriptor) {
  for (const RegisteredService& s : services_) {
    if (s.full_name == full_name) throw std::invalid_argument("service " + full_name + " added twice");
  }
  services_.push_back({std::move(full_name), descriptor});
}

const std::vector<RegisteredService>& Server::services() const noexcept { return services_; }

}  // namespace uringrpc
