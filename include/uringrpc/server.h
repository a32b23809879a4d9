// Server: owns the shards (one io_uring thread per core), the ports and the method table.
// Configure, start(), then stop(grace) or stop() from any thread, and wait().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "uringrpc/compression.h"
#include "uringrpc/handler.h"
#include "uringrpc/tls.h"

namespace uringrpc {

namespace server {
class ServerImpl;
}

// The groups of ServerOptions (below), each a plain struct with its defaults.

// Listening sockets and the server-wide connection cap.
struct ListenOptions {
  // One SO_REUSEPORT listener per shard (true) or one listener shared by all shards.
  bool so_reuseport = true;
  // With so_reuseport, share the port with sockets outside this server that also set
  // SO_REUSEPORT (zero-downtime restarts). Off: such a port is a BindError.
  bool share_port = false;
  // Connections open at once across the server; at the cap accepting pauses (existing
  // connections keep working). 0: no cap.
  size_t max_connections = 0;
};

// A connection's life: its handshake, and when it is asked to go away.
struct ConnectionOptions {
  // A new connection must finish its TLS handshake (secure ports) and send the HTTP/2
  // client preface within this time, or it is closed. 0: no deadline.
  std::chrono::milliseconds handshake_timeout{10'000};
  // A connection with no call open for max_idle, or older than max_age (each ±10%
  // jitter), gets a graceful GOAWAY; calls still running max_age_grace after an age
  // GOAWAY are cancelled. 0: off (grace 0: calls may finish).
  std::chrono::milliseconds max_idle{0};
  std::chrono::milliseconds max_age{0};
  std::chrono::milliseconds max_age_grace{0};
};

// Server keepalive pings, and how often a client may ping.
struct KeepaliveOptions {
  // The server PINGs a connection after `time` without reading from it and closes it
  // when no ack arrives within `timeout` (more than 0 while time is). time 0: no pings.
  std::chrono::milliseconds time{2 * 60 * 60 * 1000};
  std::chrono::milliseconds timeout{20 * 1000};
  // A client PING arriving sooner than min_client_ping_interval after the previous one
  // (min_client_ping_interval_idle, at least as long, when no call is open) is a strike;
  // sending DATA or HEADERS forgives them. More than max_ping_strikes: GOAWAY
  // ENHANCE_YOUR_CALM "too_many_pings". 0 strikes: no limit.
  unsigned max_ping_strikes = 2;
  std::chrono::milliseconds min_client_ping_interval{5 * 60 * 1000};
  std::chrono::milliseconds min_client_ping_interval_idle{2 * 60 * 60 * 1000};
};

// HTTP/2: what each connection advertises, and the limits its peer is held to.
struct Http2Options {
  // Advertised SETTINGS_MAX_CONCURRENT_STREAMS per connection; at least 1.
  uint32_t max_concurrent_streams = 100;
  // Flow-control windows advertised to clients: stream 1 to 2^31-1, connection 65,535
  // (HTTP/2's initial window, which cannot shrink) to 2^31-1.
  uint32_t stream_window_bytes = 1u << 20;
  uint32_t connection_window_bytes = 16u << 20;
  // Advertised SETTINGS_MAX_HEADER_LIST_SIZE (name + value + 32 per field), at least 1.
  // A larger request header list is answered with RESOURCE_EXHAUSTED; nothing past the
  // limit is copied.
  uint32_t max_header_list_bytes = 16u << 10;
  // DATA or HEADERS frames with no payload and no END_STREAM accepted in a row; one more
  // is a GOAWAY ENHANCE_YOUR_CALM. 0: no limit.
  unsigned max_empty_frames = 10;
  // RST_STREAMs a peer may send, and may make the server send for its malformed frames
  // (MadeYouReset): buckets of reset_burst tokens refilled at reset_refill_per_second.
  // Empty: GOAWAY ENHANCE_YOUR_CALM. reset_burst 0: no limit.
  unsigned reset_burst = 1000;
  unsigned reset_refill_per_second = 33;
  // Output a connection may have queued (frames waiting in HTTP/2 plus bytes not yet
  // written) before the server stops reading from it until the peer catches up. At least
  // 1 each: these are not turned off by 0.
  size_t max_queued_output_frames = 10000;
  size_t max_queued_output_bytes = 1u << 20;
};

// Calls: how many, how large, how much they may buffer.
struct CallOptions {
  // Server-wide cap on RPCs being served; 0 means no cap. Beyond it: RESOURCE_EXHAUSTED.
  size_t max_concurrent = 0;
  // Largest request message accepted; a larger length prefix ends the RPC with
  // RESOURCE_EXHAUSTED before any of its payload is buffered. A compressed message is
  // held to it twice: as sent, and as it inflates (stopped at the limit).
  size_t max_receive_message_bytes = 4u << 20;
  // Compression of response messages when the handler does not choose
  // (ServerContext::set_compression); only for clients that list it in grpc-accept-encoding.
  Compression default_compression = Compression::kNone;
  // co_await ctx.write() suspends while a stream has more than this many bytes queued.
  size_t write_watermark_bytes = 256u << 10;
  // A stream with response data waiting on a zero flow-control window for this long is
  // reset (RST_STREAM CANCEL) and its handler cancelled. 0: never.
  std::chrono::milliseconds stalled_stream_timeout{5 * 60 * 1000};
  // Bytes all connections may buffer together (request messages waiting for handlers,
  // response messages waiting for the network). Beyond it new calls get
  // RESOURCE_EXHAUSTED. Shared evenly by the shards, so at least 1 per shard. 0: no budget.
  size_t max_buffered_bytes = size_t{1} << 30;
};

// Each shard's event loop.
struct LoopOptions {
  // Receive buffers of each shard's provided-buffer ring: 4 KiB to 1 MiB each, a power
  // of two from 1 to 32768 of them.
  uint32_t recv_buffer_bytes = 16u << 10;
  uint32_t recv_buffer_count = 512;
  // Under load (its last wake-up brought several completions), a shard about to sleep
  // lets completions gather for up to completion_batch_wait (0 to 1 s), or until
  // completion_batch_size (1 to 4096) of them are in, before it wakes: one io_uring_enter
  // then serves many calls. Adds at most that much latency to a call that arrives during
  // the wait, none at light load; wait 0 or size 1 wakes on every completion. Needs Linux
  // 6.12+ (IORING_FEAT_MIN_TIMEOUT); ignored on older kernels.
  std::chrono::microseconds completion_batch_wait{20};
  unsigned completion_batch_size = 32;
};

// Every option of a server, declared once with its default (DESIGN.md, "Layout"). Each
// layer below takes what it needs through one function of src/server/layer_options.cc,
// and Server checks the whole set once, when it is constructed (std::invalid_argument
// naming the field and the accepted range). Times are std::chrono durations; sizes end
// in _bytes; 0 turns off only where a field says so. man uringrpc(7), OPTIONS, has them all.
struct ServerOptions {
  // Shard threads, at most 1024; 0 means one per CPU in the process's affinity mask.
  unsigned shards = 0;
  // Threads running uringrpc::offload() work, 1 to 1024.
  unsigned offload_threads = 2;
  ListenOptions listen{};
  ConnectionOptions connection{};
  KeepaliveOptions keepalive{};
  Http2Options http2{};
  CallOptions calls{};
  LoopOptions loop{};
};

class Server {
 public:
  // Throws std::invalid_argument naming the first option out of its range.
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
