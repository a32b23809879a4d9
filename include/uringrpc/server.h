// Server: owns the shards (one io_uring thread per core), the ports and the method table.
// Configure, start(), then stop(grace) or stop() from any thread, and wait().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "uringrpc/handler.h"
#include "uringrpc/tls.h"

namespace uringrpc {

namespace server {
class ServerImpl;
}

struct ServerOptions {
  // Shard threads; 0 means one per CPU in the process's affinity mask.
  unsigned shards = 0;
  // One SO_REUSEPORT listener per shard (true) or one listener shared by all shards.
  bool so_reuseport = true;
  // With so_reuseport, share the port with sockets outside this server that also set
  // SO_REUSEPORT (zero-downtime restarts). Off: such a port is a BindError.
  bool share_port = false;
  // Server-wide cap on RPCs being served; 0 means no cap. Beyond it: RESOURCE_EXHAUSTED.
  size_t max_concurrent_rpcs = 0;
  // Largest request message accepted; a larger length prefix ends the RPC with
  // RESOURCE_EXHAUSTED before any of its payload is buffered.
  size_t max_receive_message_size = 4u << 20;
  // Advertised SETTINGS_MAX_CONCURRENT_STREAMS per connection.
  uint32_t max_concurrent_streams = 100;
  // Flow-control windows advertised to clients.
  uint32_t stream_window_bytes = 1u << 20;
  uint32_t connection_window_bytes = 16u << 20;
  // co_await ctx.write() suspends while a stream has more than this many bytes queued.
  size_t write_watermark_bytes = 256u << 10;
  // Receive buffers of each shard's provided-buffer ring.
  uint32_t recv_buffer_size = 16u << 10;
  uint32_t recv_buffer_count = 512;
  // Under load (its last wake-up brought several completions), a shard about to sleep lets
  // completions gather for up to this long, or until completion_batch_size of them are in,
  // before it wakes: one io_uring_enter then serves many calls. Adds at most this much
  // latency to a call that arrives during that window, none at light load; 0 wakes on every
  // completion. Needs Linux 6.12+ (IORING_FEAT_MIN_TIMEOUT); ignored on older kernels.
  std::chrono::microseconds completion_batch_wait{20};
  unsigned completion_batch_size = 32;
  // A new connection must finish its TLS handshake (secure ports) and send the HTTP/2
  // client preface within this time, or it is closed.
  std::chrono::milliseconds handshake_timeout{10000};
  // Threads running uringrpc::offload() work.
  unsigned offload_threads = 2;

  // ---- Limits against misbehaving peers (what gRPC core and Envoy do by default).
  // Advertised SETTINGS_MAX_HEADER_LIST_SIZE (name + value + 32 per field). A larger
  // request header list is answered with RESOURCE_EXHAUSTED; nothing past the limit is copied.
  uint32_t max_header_list_bytes = 16u << 10;
  // A client PING arriving sooner than min_client_ping_interval after the previous one
  // (min_client_ping_interval_idle when no call is open) is a strike; sending DATA or
  // HEADERS forgives them. More than max_ping_strikes: GOAWAY ENHANCE_YOUR_CALM
  // "too_many_pings". 0 strikes: no limit.
  unsigned max_ping_strikes = 2;
  std::chrono::milliseconds min_client_ping_interval{5 * 60 * 1000};
  std::chrono::milliseconds min_client_ping_interval_idle{2 * 60 * 60 * 1000};
  // The server PINGs a connection after keepalive_time without reading from it and closes
  // it when no ack arrives within keepalive_timeout. 0: no keepalive pings.
  std::chrono::milliseconds keepalive_time{2 * 60 * 60 * 1000};
  std::chrono::milliseconds keepalive_timeout{20 * 1000};
  // A connection with no call open for max_connection_idle, or older than
  // max_connection_age (each ±10% jitter), gets a graceful GOAWAY; calls still running
  // max_connection_age_grace after an age GOAWAY are cancelled. 0: off.
  std::chrono::milliseconds max_connection_idle{0};
  std::chrono::milliseconds max_connection_age{0};
  std::chrono::milliseconds max_connection_age_grace{0};
  // DATA or HEADERS frames with no payload and no END_STREAM accepted in a row; one more
  // is a GOAWAY ENHANCE_YOUR_CALM. 0: no limit.
  unsigned max_empty_frames = 10;
  // RST_STREAMs a peer may make the server send for its malformed frames (MadeYouReset):
  // a bucket of reset_burst tokens refilled at reset_refill_per_second. Empty:
  // GOAWAY ENHANCE_YOUR_CALM. Client resets are limited the same way by nghttp2.
  unsigned reset_burst = 1000;
  unsigned reset_refill_per_second = 33;
  // Output a connection may have queued (frames waiting in HTTP/2 plus bytes not yet
  // written) before the server stops reading from it until the peer catches up.
  size_t max_queued_output_frames = 10000;
  size_t max_queued_output_bytes = 1u << 20;
  // A stream with response data waiting on a zero flow-control window for this long is
  // reset (RST_STREAM CANCEL) and its handler cancelled. 0: never.
  std::chrono::milliseconds stalled_stream_timeout{5 * 60 * 1000};
  // Connections open at once across the server; at the cap accepting pauses (existing
  // connections keep working). 0: no cap.
  size_t max_connections = 0;
  // Bytes all connections may buffer together (request messages waiting for handlers,
  // response messages waiting for the network). Beyond it new calls get
  // RESOURCE_EXHAUSTED. Shared evenly by the shards. 0: no budget.
  size_t max_buffered_bytes = size_t{1} << 30;
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  // Stops immediately (as stop()) if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes the full method path ("/package.Service/Method") to a handler built with
  // unary(), server_streaming(), client_streaming() or bidi_streaming().
  // Throws std::invalid_argument for a malformed or duplicate path, UsageError after start().
  void add_method(std::string path, MethodHandler handler);
  // Generated services register their methods through this.
  template <class Service>
  void add_service(Service& service) {
    service.register_methods(*this);
  }

  // Binds now and returns the bound port (0 for unix: addresses). Accepts "[::]:0",
  // "0.0.0.0:N", "localhost:N", "127.0.0.1:N", "[::1]:N" and "unix:/path".
  // Throws BindError naming the address and the reason, UsageError after start().
  int add_insecure_port(std::string_view address);
  int add_secure_port(std::string_view address, const TlsCredentials& credentials);

  // Starts the shard threads; they accept and serve. Throws UsageError if called twice.
  void start();

  // Graceful stop: stops accepting at once, sends GOAWAY, lets in-flight RPCs run for up
  // to `grace`, then cancels the rest (their clients see UNAVAILABLE). Thread-safe;
  // concurrent stops share one shutdown and the shortest grace wins. Returns once every
  // RPC has ended and every shard thread has joined, except when called from a handler
  // (a shard thread): then it starts the shutdown and returns at once.
  void stop(std::chrono::milliseconds grace);
  // Immediate stop: as stop(0).
  void stop();
  // Blocks until the server has stopped (after start). Throws UsageError from a handler.
  void wait();

  const ServerOptions& options() const noexcept;
  unsigned shard_count() const noexcept;

 private:
  std::unique_ptr<server::ServerImpl> impl_;
};

}  // namespace uringrpc
