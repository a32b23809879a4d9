// AdminHttp: the admin endpoint (ServerOptions::metrics.listen): HTTP/1.1 GET /metrics
// answered with the Prometheus text, by libmicrohttpd on a thread of its own. Started and
// stopped by ServerImpl (server.cc).
//
// Why not a shard: shards speak HTTP/2 (nghttp2) and gRPC only; a scrape is an HTTP/1.1
// request every few seconds that reads every shard's counters, so it has no shard to
// belong to, and serving it from one would put an HTTP/1.1 parser into the transport and a
// several-kilobyte render into a loop that serves calls. One libmicrohttpd thread costs
// nothing between scrapes, and a shard stuck in a handler does not stop the scrapes that
// would show it.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "loop/listener.h"

struct MHD_Daemon;

namespace uringrpc::server {

class AdminHttp {
 public:
  // Binds `address` (the forms of Server::add_insecure_port) and starts serving; `render`
  // is called on the admin thread for each GET /metrics. Throws BindError (address taken,
  // or libmicrohttpd would not start) and std::invalid_argument (malformed address).
  AdminHttp(std::string_view address, std::function<std::string()> render);
  ~AdminHttp();
  AdminHttp(const AdminHttp&) = delete;
  AdminHttp& operator=(const AdminHttp&) = delete;

  int port() const { return set_.port; }

 private:
  loop::ListenerSet set_;
  std::function<std::string()> render_;
  std::vector<MHD_Daemon*> daemons_;  // one per listening socket ("localhost" has two)
};

}  // namespace uringrpc::server
