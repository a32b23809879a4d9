// HealthService: gRPC's standard health service, grpc.health.v1.Health (Check and
// Watch), ready to add to a server. Load balancers, Kubernetes probes and gRPC clients'
// own health checking ask it whether the server, or one service of it, should get calls.
//   uringrpc::HealthService health;           // outlives the server
//   server.add_service(health);               // before start()
//   health.set_status("pkg.Svc", uringrpc::HealthService::SERVING);   // any thread
// "" names the whole server and starts SERVING; any other name is unknown until its first
// set_status. When a stop begins, every service turns NOT_SERVING before the first GOAWAY
// (man uringrpc_health(3) has the whole behaviour).
#pragma once

#include <memory>
#include <string_view>

namespace uringrpc {

class Server;

namespace services {
class HealthImpl;
}

class HealthService {
 public:
  // As in grpc.health.v1.HealthCheckResponse.ServingStatus.
  enum ServingStatus { SERVING = 1, NOT_SERVING = 2 };

  HealthService();
  ~HealthService();
  HealthService(const HealthService&) = delete;
  HealthService& operator=(const HealthService&) = delete;

  // Any thread, the application's own included. Check answers it from then on; open Watch
  // streams of that service get it soon after (several changes in a row may reach them as
  // the last one only). Ignored once the server's stop has begun. Throws
  // std::invalid_argument for a status other than SERVING or NOT_SERVING.
  void set_status(std::string_view service, ServingStatus status);
  // Any thread. Forgets a service: Check answers NOT_FOUND again and Watch SERVICE_UNKNOWN.
  void clear_status(std::string_view service);

  // Called by Server::add_service(*this): adds Check and Watch at
  // "/grpc.health.v1.Health/<rpc>" and a Server::on_stop_begin hook that turns every
  // service NOT_SERVING. One server per HealthService.
  void register_methods(Server& server);

 private:
  std::unique_ptr<services::HealthImpl> impl_;
};

}  // namespace uringrpc
