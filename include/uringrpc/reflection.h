// Server reflection: grpc.reflection.v1 and grpc.reflection.v1alpha ServerReflection, so
// that grpcurl, grpc-call and other reflection clients can list and describe the services
// of a server without their .proto files. man uringrpc_reflection(3).
#pragma once

#include <memory>

namespace uringrpc {

class Server;

// One object serves both versions. Add it like a generated service:
//   uringrpc::ReflectionService reflection;   // must outlive the server
//   server.add_service(reflection);
// It answers from the descriptors of the services added to that server from generated code
// (Server::services(), itself included) and the files those import, transitively; services
// added after it are included, since it reads the list at its first request.
class ReflectionService {
 public:
  ReflectionService();
  ~ReflectionService();
  ReflectionService(const ReflectionService&) = delete;
  ReflectionService& operator=(const ReflectionService&) = delete;

  // Adds both versions' ServerReflectionInfo to `server`; Server::add_service calls it.
  // An object serves one server: a second register_methods throws std::logic_error.
  void register_methods(Server& server);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace uringrpc
