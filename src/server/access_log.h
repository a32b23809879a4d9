// The access log (ServerOptions::access_log): one JSON object per line per call, written by
// a built-in interceptor's after-hook. ServerImpl puts it first in the interceptor chain
// when the option is on, so it sees every call, also those another interceptor refused.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "uringrpc/interceptor.h"
#include "uringrpc/server.h"

namespace uringrpc::server {

// Appends `s` as a JSON string, quotes included: ", \ and control characters escaped, and
// each byte that is not part of well-formed UTF-8 replaced by \ufffd (header values are
// bytes; the line must stay valid JSON whatever a client sends).
void append_json_string(std::string& out, std::string_view s);

// One line, without the newline: time (RFC 3339 UTC, microseconds), peer, method, code (its
// name) and grpc_code (its number), duration_us, bytes_in, bytes_out, messages_in,
// messages_out, user_agent (null when the client sent none).
std::string access_log_line(std::string_view peer, std::string_view method,
                            std::optional<std::string_view> user_agent, const CallStats& stats);

class AccessLog final : public Interceptor {
 public:
  // options.enabled is not looked at: the server makes an AccessLog only when it is set.
  explicit AccessLog(const AccessLogOptions& options);
  void after(const ServerContext& ctx, const CallStats& stats) override;

 private:
  int fd_;
  std::function<void(std::string_view)> sink_;
};

}  // namespace uringrpc::server
