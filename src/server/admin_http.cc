// GET /metrics over libmicrohttpd (see admin_http.h for why not on a shard).
#include "server/admin_http.h"

#include <microhttpd.h>
#include <unistd.h>

#include <cstring>

#include "base/log.h"
#include "uringrpc/errors.h"

namespace uringrpc::server {
namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result reply(MHD_Connection* connection, unsigned status, const std::string& body, const char* type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_Result ret = MHD_queue_response(connection, status, r);
  MHD_destroy_response(r);
  return ret;
}

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* /*version*/, const char* /*upload_data*/, size_t* upload_data_size,
                      void** /*con_cls*/) {
  auto* render = static_cast<std::function<std::string()>*>(cls);
  if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 && std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    *upload_data_size = 0;  // a body, if any, is not read
    return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", "text/plain");
  }
  if (std::strcmp(url, "/metrics") != 0) return reply(connection, MHD_HTTP_NOT_FOUND, "not found; try /metrics\n", "text/plain");
  return reply(connection, MHD_HTTP_OK, (*render)(), kContentType);
}

}  // namespace

AdminHttp::AdminHttp(std::string_view address, std::function<std::string()> render)
    : set_(loop::bind_listeners(address, 1, false, false)), render_(std::move(render)) {
  for (int fd : set_.fds) {
    // The socket is libmicrohttpd's from here: MHD_stop_daemon closes it.
    MHD_Daemon* d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, nullptr, nullptr,
                                     &on_request, &render_, MHD_OPTION_LISTEN_SOCKET, fd,
                                     MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                     MHD_OPTION_END);
    if (!d) {
      int err = errno;
      for (auto* started : daemons_) MHD_stop_daemon(started);
      // The started daemons closed their sockets; close the ones no daemon took.
      for (size_t i = daemons_.size(); i < set_.fds.size(); ++i) ::close(set_.fds[i]);
      set_.fds.clear();
      set_.close_all();
      throw BindError("cannot serve metrics on " + std::string(address) + ": libmicrohttpd would not start (" +
                      std::strerror(err) + ")");
    }
    daemons_.push_back(d);
  }
  URINGRPC_LOG(base::LogLevel::kInfo, "metrics: GET /metrics on %s (port %d)", set_.address.c_str(), set_.port);
}

AdminHttp::~AdminHttp() {
  for (auto* d : daemons_) MHD_stop_daemon(d);
  set_.fds.clear();  // closed by libmicrohttpd; a unix socket file is still ours to remove
  set_.close_all();
}

}  // namespace uringrpc::server
