// abuse-server: the target of the abuse suite and the soak (tests/abuse/*.py). A uringrpc
// Server whose every hardening limit is a flag, so tests can lower timeouts and stay short,
// serving a few raw-bytes methods whose handlers report on stdout when they are cancelled.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uringrpc/uringrpc.h"

namespace {

const char kUsage[] =
    "usage: abuse-server [flags]\n"
    "Serves on 127.0.0.1 (port 0 picks a free one):\n"
    "  /abuse.Abuse/Echo      unary, answers with the request bytes\n"
    "  /abuse.Abuse/Download  server streaming; request \"N\" or \"N CHUNK\" (decimal): N bytes\n"
    "                         in messages of CHUNK bytes (default 65536)\n"
    "  /abuse.Abuse/Slow      unary; request \"MS\": sleeps MS milliseconds, answers \"slept\"\n"
    "stdout: 'listening on PORT', 'tls listening on PORT' (with --tls-cert), then for Download\n"
    "  and Slow one line per call: 'start METHOD', and 'done METHOD' when the handler finished\n"
    "  its work or 'cancelled METHOD' when it was cancelled (its frame destroyed mid-way or a\n"
    "  write refused).\n"
    "Stops at once on EOF on stdin, SIGTERM or SIGINT; exit status 0, 1 if a port cannot be\n"
    "  bound or the TLS files are unusable, 2 for a bad flag.\n"
    "flags (defaults are ServerOptions'):\n"
    "  --port N --shards N --tls-cert FILE --tls-key FILE (a second, TLS port)\n"
    "  --max-concurrent-streams N --max-concurrent-rpcs N --max-receive-message-size N\n"
    "  --write-watermark-bytes N --stream-window-bytes N --connection-window-bytes N\n"
    "  --max-header-list-bytes N --max-ping-strikes N --min-client-ping-interval-ms MS\n"
    "  --min-client-ping-interval-idle-ms MS --keepalive-time-ms MS --keepalive-timeout-ms MS\n"
    "  --max-connection-idle-ms MS --max-connection-age-ms MS --max-connection-age-grace-ms MS\n"
    "  --max-empty-frames N --reset-burst N --reset-refill-per-second N\n"
    "  --max-queued-output-frames N --max-queued-output-bytes N --stalled-stream-timeout-ms MS\n"
    "  --handshake-timeout-ms MS --max-connections N --max-buffered-bytes N\n";

class UsageFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

uint64_t parse_u64(std::string_view flag, std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageFailure(std::string(flag) + ": expected a non-negative number, got '" + std::string(text) + "'");
  }
  return value;
}

// Lines come from every shard thread: one lock and one flushed write per line, so the
// test reading our stdout never sees two lines interleaved.
std::mutex g_stdout_mu;
void say(std::string line) {
  line += '\n';
  std::lock_guard lock(g_stdout_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

// Lives in a handler's coroutine frame. If the frame is destroyed before the handler said
// it finished (the library cancelled it at a suspension point, or a write was refused),
// the destructor reports the cancellation: that is how tests see handlers of reset or
// vanished streams go away instead of running on.
class CancelGuard {
 public:
  explicit CancelGuard(std::string_view method) : method_(method) { say("start " + method_); }
  ~CancelGuard() { say((finished_ ? "done " : "cancelled ") + method_); }
  CancelGuard(const CancelGuard&) = delete;
  CancelGuard& operator=(const CancelGuard&) = delete;
  void finished() { finished_ = true; }

 private:
  std::string method_;
  bool finished_ = false;
};

uringrpc::Task<std::string> echo(std::string request, uringrpc::ServerContext&) { co_return request; }

uringrpc::Task<void> download(std::string request, uringrpc::ServerContext& ctx) {
  CancelGuard guard("/abuse.Abuse/Download");
  uint64_t total = 0, chunk = 65536;
  auto space = request.find(' ');
  try {
    total = parse_u64("request", std::string_view(request).substr(0, space));
    if (space != std::string::npos) chunk = parse_u64("request", std::string_view(request).substr(space + 1));
  } catch (const UsageFailure&) {
    ctx.abort(uringrpc::StatusCode::INVALID_ARGUMENT, "request must be 'N' or 'N CHUNK'");
  }
  if (chunk == 0 || chunk > (16u << 20)) ctx.abort(uringrpc::StatusCode::INVALID_ARGUMENT, "bad chunk size");
  for (uint64_t sent = 0; sent < total;) {
    uint64_t n = std::min(chunk, total - sent);
    // A fresh allocation per message, as a real handler would make: buffered responses
    // must show in the server's RSS for the memory bounds to mean anything.
    if (!co_await ctx.write(std::string(n, 'd'))) co_return;
    sent += n;
  }
  guard.finished();
}

uringrpc::Task<std::string> slow(std::string request, uringrpc::ServerContext& ctx) {
  CancelGuard guard("/abuse.Abuse/Slow");
  uint64_t ms = 0;
  try {
    ms = parse_u64("request", request);
  } catch (const UsageFailure&) {
    ctx.abort(uringrpc::StatusCode::INVALID_ARGUMENT, "request must be a number of milliseconds");
  }
  co_await uringrpc::sleep_for(std::chrono::milliseconds(ms));
  if (ctx.cancelled()) co_return std::string();
  guard.finished();
  co_return std::string("slept");
}

struct Flags {
  uringrpc::ServerOptions options;
  int port = 0;
  std::string tls_cert, tls_key;
};

Flags parse_flags(int argc, char** argv) {
  Flags f;
  auto& o = f.options;
  using Ms = std::chrono::milliseconds;
  // One setter per numeric flag: the table is the list of limits the tests can turn.
  const std::vector<std::pair<std::string_view, std::function<void(uint64_t)>>> numeric = {
      {"--port", [&](uint64_t v) { f.port = static_cast<int>(v); }},
      {"--shards", [&](uint64_t v) { o.shards = static_cast<unsigned>(v); }},
      {"--max-concurrent-streams", [&](uint64_t v) { o.http2.max_concurrent_streams = static_cast<uint32_t>(v); }},
      {"--max-concurrent-rpcs", [&](uint64_t v) { o.calls.max_concurrent = v; }},
      {"--max-receive-message-size", [&](uint64_t v) { o.calls.max_receive_message_bytes = v; }},
      {"--write-watermark-bytes", [&](uint64_t v) { o.calls.write_watermark_bytes = v; }},
      {"--stream-window-bytes", [&](uint64_t v) { o.http2.stream_window_bytes = static_cast<uint32_t>(v); }},
      {"--connection-window-bytes", [&](uint64_t v) { o.http2.connection_window_bytes = static_cast<uint32_t>(v); }},
      {"--max-header-list-bytes", [&](uint64_t v) { o.http2.max_header_list_bytes = static_cast<uint32_t>(v); }},
      {"--max-ping-strikes", [&](uint64_t v) { o.keepalive.max_ping_strikes = static_cast<unsigned>(v); }},
      {"--min-client-ping-interval-ms", [&](uint64_t v) { o.keepalive.min_client_ping_interval = Ms(v); }},
      {"--min-client-ping-interval-idle-ms", [&](uint64_t v) { o.keepalive.min_client_ping_interval_idle = Ms(v); }},
      {"--keepalive-time-ms", [&](uint64_t v) { o.keepalive.time = Ms(v); }},
      {"--keepalive-timeout-ms", [&](uint64_t v) { o.keepalive.timeout = Ms(v); }},
      {"--max-connection-idle-ms", [&](uint64_t v) { o.connection.max_idle = Ms(v); }},
      {"--max-connection-age-ms", [&](uint64_t v) { o.connection.max_age = Ms(v); }},
      {"--max-connection-age-grace-ms", [&](uint64_t v) { o.connection.max_age_grace = Ms(v); }},
      {"--max-empty-frames", [&](uint64_t v) { o.http2.max_empty_frames = static_cast<unsigned>(v); }},
      {"--reset-burst", [&](uint64_t v) { o.http2.reset_burst = static_cast<unsigned>(v); }},
      {"--reset-refill-per-second", [&](uint64_t v) { o.http2.reset_refill_per_second = static_cast<unsigned>(v); }},
      {"--max-queued-output-frames", [&](uint64_t v) { o.http2.max_queued_output_frames = v; }},
      {"--max-queued-output-bytes", [&](uint64_t v) { o.http2.max_queued_output_bytes = v; }},
      {"--stalled-stream-timeout-ms", [&](uint64_t v) { o.calls.stalled_stream_timeout = Ms(v); }},
      {"--handshake-timeout-ms", [&](uint64_t v) { o.connection.handshake_timeout = Ms(v); }},
      {"--max-connections", [&](uint64_t v) { o.listen.max_connections = v; }},
      {"--max-buffered-bytes", [&](uint64_t v) { o.calls.max_buffered_bytes = v; }},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) throw UsageFailure(std::string(flag) + ": missing value (or unknown flag)");
    std::string_view value = argv[++i];
    if (flag == "--tls-cert") {
      f.tls_cert = value;
      continue;
    }
    if (flag == "--tls-key") {
      f.tls_key = value;
      continue;
    }
    bool known = false;
    for (auto& [name, set] : numeric) {
      if (name == flag) {
        set(parse_u64(flag, value));
        known = true;
        break;
      }
    }
    if (!known) throw UsageFailure(std::string(flag) + ": unknown flag");
  }
  if (f.port > 65535) throw UsageFailure("--port: at most 65535");
  if (f.tls_cert.empty() != f.tls_key.empty()) throw UsageFailure("--tls-cert and --tls-key go together");
  return f;
}

int run(const Flags& flags) {
  // Block the stop signals before the shard threads exist so that only the signalfd
  // below ever takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a test that stopped reading our stdout must not kill us
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::fprintf(stderr, "abuse-server: signalfd: %s\n", std::strerror(errno));
    return 1;
  }

  uringrpc::Server server(flags.options);
  server.add_method("/abuse.Abuse/Echo", uringrpc::unary(echo));
  server.add_method("/abuse.Abuse/Download", uringrpc::server_streaming(download));
  server.add_method("/abuse.Abuse/Slow", uringrpc::unary(slow));
  int port = 0, tls_port = 0;
  try {
    port = server.add_insecure_port("127.0.0.1:" + std::to_string(flags.port));
    if (!flags.tls_cert.empty()) {
      auto credentials = uringrpc::TlsCredentials::from_files(flags.tls_cert, flags.tls_key);
      tls_port = server.add_secure_port("127.0.0.1:0", credentials);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "abuse-server: %s\n", e.what());
    return 1;
  }
  server.start();
  say("listening on " + std::to_string(port));
  if (tls_port) say("tls listening on " + std::to_string(tls_port));

  for (;;) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {0, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & POLLIN) break;
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
      char buf[256];
      ssize_t n = read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF: the test that started us is gone or done
    }
  }
  server.stop();
  server.wait();
  close(signal_fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  try {
    flags = parse_flags(argc, argv);
  } catch (const UsageFailure& e) {
    std::fprintf(stderr, "abuse-server: %s (see --help)\n", e.what());
    return 2;
  }
  try {
    return run(flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "abuse-server: %s\n", e.what());
    return 1;
  }
}
