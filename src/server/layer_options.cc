// The one place ServerOptions become each layer's settings, and where every field's range
// is checked (at Server construction, by ServerImpl). Ranges are documented with the
// fields in include/uringrpc/server.h and in man/uringrpc.7.
#include "server/layer_options.h"

#include <fcntl.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "server/server_shard.h"

namespace uringrpc::server {
namespace {

// Validated durations are never negative; the clamp keeps an unvalidated caller (a test)
// from wrapping around.
uint64_t ms(std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count() > 0 ? d.count() : 0); }

constexpr uint64_t kMaxWindow = (uint64_t{1} << 31) - 1;  // RFC 9113 6.9.1
constexpr uint64_t kInitialWindow = 65535;                 // RFC 9113 6.9.2
constexpr unsigned kMaxThreads = 1024;
constexpr uint64_t kMinRecvBuffer = 4u << 10;
constexpr uint64_t kMaxRecvBuffer = 1u << 20;
constexpr uint64_t kMaxRecvBuffers = 32768;  // io_uring's provided-buffer ring
constexpr int64_t kMaxBatchWaitUsec = 1'000'000;
constexpr unsigned kMaxBatchSize = 4096;  // the shard ring's entries
constexpr uint64_t kMaxDirectSlots = 1u << 20;  // IORING_MAX_FIXED_FILES

[[noreturn]] void reject(const std::string& field, const std::string& range, const std::string& value) {
  throw std::invalid_argument("ServerOptions::" + field + " is " + value + "; it must be " + range);
}

void check_range(const char* field, uint64_t v, uint64_t lo, uint64_t hi, const std::string& range) {
  if (v < lo || v > hi) reject(field, range, std::to_string(v));
}

template <class Duration>
void check_not_negative(const char* field, Duration d, const char* unit) {
  if (d.count() < 0) reject(field, std::string("0 or more"), std::to_string(d.count()) + " " + unit);
}

}  // namespace

http2::SessionSettings session_settings(const ServerOptions& o) {
  http2::SessionSettings s;
  s.max_concurrent_streams = o.http2.max_concurrent_streams;
  s.stream_window_bytes = o.http2.stream_window_bytes;
  s.connection_window_bytes = o.http2.connection_window_bytes;
  s.max_header_list_bytes = o.http2.max_header_list_bytes;
  s.max_ping_strikes = o.keepalive.max_ping_strikes;
  s.min_ping_interval_ms = ms(o.keepalive.min_client_ping_interval);
  s.min_ping_interval_idle_ms = ms(o.keepalive.min_client_ping_interval_idle);
  s.keepalive_time_ms = ms(o.keepalive.time);
  s.keepalive_timeout_ms = ms(o.keepalive.timeout);
  s.max_empty_frames = o.http2.max_empty_frames;
  s.reset_burst = o.http2.reset_burst;
  s.reset_refill_per_second = o.http2.reset_refill_per_second;
  s.max_queued_output_frames = o.http2.max_queued_output_frames;
  s.max_queued_output_bytes = o.http2.max_queued_output_bytes;
  return s;
}

rpc::RpcConfig rpc_config(const ServerOptions& o) {
  rpc::RpcConfig c;
  c.max_receive_message_size = o.calls.max_receive_message_bytes;
  c.max_send_message_size = o.calls.max_send_message_bytes;
  c.write_watermark = o.calls.write_watermark_bytes;
  // A stream buffers at most what its window lets in before the handler takes it.
  c.read_watermark = o.http2.stream_window_bytes;
  c.max_concurrent_rpcs = o.calls.max_concurrent;
  c.max_connection_idle_ms = ms(o.connection.max_idle);
  c.max_connection_age_ms = ms(o.connection.max_age);
  c.max_connection_age_grace_ms = ms(o.connection.max_age_grace);
  c.stalled_stream_timeout_ms = ms(o.calls.stalled_stream_timeout);
  c.default_compression = o.calls.default_compression;
  return c;
}

loop::ShardConfig shard_config(const ServerOptions& o) {
  loop::ShardConfig c;
  c.recv_buffer_size = o.loop.recv_buffer_bytes;
  c.recv_buffer_count = o.loop.recv_buffer_count;
  c.batch_wait_usec = static_cast<unsigned>(o.loop.completion_batch_wait.count());
  c.batch_wait_events = o.loop.completion_batch_size;
  return c;
}

ShardSetup ShardSetup::from(const ServerOptions& o) {
  ShardSetup s;
  s.loop = shard_config(o);
  s.http2 = session_settings(o);
  s.tls_handshake_timeout_ms = ms(o.connection.handshake_timeout);
  s.max_connections = o.listen.max_connections;
  s.direct = o.listen.direct_descriptors;
  return s;
}

void validate(const ServerOptions& o, unsigned shards) {
  // ---- threads
  check_range("shards", o.shards, 0, kMaxThreads, "0 (one per CPU) to 1024");
  check_range("offload_threads", o.offload_threads, 1, kMaxThreads,
              "1 to 1024 (with none, offload() would never finish)");

  // ---- listen
  if (o.listen.steer_to_receiving_cpu) {
    if (!o.listen.so_reuseport || o.listen.share_port || !o.loop.pin_shards_to_cpus) {
      reject("listen.steer_to_receiving_cpu",
             "false unless listen.so_reuseport is true, listen.share_port false and loop.pin_shards_to_cpus "
             "true (the kernel steers among this server's own per-shard listeners, to shards that stay on "
             "their CPU)",
             "true");
    }
  }

  if (o.listen.direct_slots_per_shard != 0 && !o.listen.direct_descriptors) {
    reject("listen.direct_slots_per_shard", "0 while listen.direct_descriptors is false (it sizes their table)",
           std::to_string(o.listen.direct_slots_per_shard));
  }
  check_range("listen.direct_slots_per_shard", o.listen.direct_slots_per_shard, 0, kMaxDirectSlots,
              "0 (the soft RLIMIT_NOFILE) to 1048576 (io_uring's largest file table); the kernel also "
              "refuses more than the soft RLIMIT_NOFILE at start()");

  // ---- connection
  check_not_negative("connection.handshake_timeout", o.connection.handshake_timeout, "ms");
  check_not_negative("connection.max_idle", o.connection.max_idle, "ms");
  check_not_negative("connection.max_age", o.connection.max_age, "ms");
  check_not_negative("connection.max_age_grace", o.connection.max_age_grace, "ms");

  // ---- keepalive
  check_not_negative("keepalive.time", o.keepalive.time, "ms");
  check_not_negative("keepalive.timeout", o.keepalive.timeout, "ms");
  if (o.keepalive.time.count() > 0 && o.keepalive.timeout.count() == 0) {
    reject("keepalive.timeout", "more than 0 ms while keepalive.time is (keepalive.time 0 turns keepalive off)",
           "0 ms");
  }
  check_not_negative("keepalive.min_client_ping_interval", o.keepalive.min_client_ping_interval, "ms");
  check_not_negative("keepalive.min_client_ping_interval_idle", o.keepalive.min_client_ping_interval_idle, "ms");
  if (o.keepalive.min_client_ping_interval_idle < o.keepalive.min_client_ping_interval) {
    reject("keepalive.min_client_ping_interval_idle",
           "at least keepalive.min_client_ping_interval (" +
               std::to_string(o.keepalive.min_client_ping_interval.count()) +
               " ms): a client with no call open may ping no more often than one with calls",
           std::to_string(o.keepalive.min_client_ping_interval_idle.count()) + " ms");
  }

  // ---- http2
  check_range("http2.max_concurrent_streams", o.http2.max_concurrent_streams, 1, UINT32_MAX,
              "at least 1 (0 would refuse every stream)");
  check_range("http2.stream_window_bytes", o.http2.stream_window_bytes, 1, kMaxWindow,
              "1 to 2147483647 (2^31-1, HTTP/2's largest window; 0 would let no request body in)");
  check_range("http2.connection_window_bytes", o.http2.connection_window_bytes, kInitialWindow, kMaxWindow,
              "65535 (HTTP/2's initial connection window, which cannot shrink) to 2147483647 (2^31-1)");
  check_range("http2.max_header_list_bytes", o.http2.max_header_list_bytes, 1, UINT32_MAX,
              "at least 1 (0 would refuse every request)");
  check_range("http2.max_queued_output_frames", o.http2.max_queued_output_frames, 1, SIZE_MAX,
              "at least 1 (0 would not turn the limit off)");
  check_range("http2.max_queued_output_bytes", o.http2.max_queued_output_bytes, 1, SIZE_MAX,
              "at least 1 (0 would not turn the limit off)");

  // ---- calls: any max_receive_message_bytes and max_send_message_bytes works (0 allows
  // only empty messages, SIZE_MAX sets no send limit).
  check_range("calls.default_compression", static_cast<uint64_t>(o.calls.default_compression), 0, 2,
              "Compression::kNone (0), kDeflate (1) or kGzip (2)");
  check_not_negative("calls.stalled_stream_timeout", o.calls.stalled_stream_timeout, "ms");
  if (o.calls.max_buffered_bytes != 0 && o.calls.max_buffered_bytes < shards) {
    reject("calls.max_buffered_bytes",
           "0 (no budget) or at least 1 per shard (" + std::to_string(shards) +
               "): a share of 0 bytes would be no budget at all",
           std::to_string(o.calls.max_buffered_bytes));
  }

  // ---- loop
  check_range("loop.recv_buffer_bytes", o.loop.recv_buffer_bytes, kMinRecvBuffer, kMaxRecvBuffer,
              "4096 (4 KiB) to 1048576 (1 MiB)");
  const uint32_t n = o.loop.recv_buffer_count;
  if (n == 0 || (n & (n - 1)) != 0 || n > kMaxRecvBuffers) {
    reject("loop.recv_buffer_count", "a power of two from 1 to 32768 (io_uring's buffer ring)", std::to_string(n));
  }
  if (o.loop.completion_batch_wait.count() < 0 || o.loop.completion_batch_wait.count() > kMaxBatchWaitUsec) {
    reject("loop.completion_batch_wait", "0 (off) to 1000000 us (1 s)",
           std::to_string(o.loop.completion_batch_wait.count()) + " us");
  }
  check_range("loop.completion_batch_size", o.loop.completion_batch_size, 1, kMaxBatchSize,
              "1 (wake on every completion) to 4096 (the shard ring's size)");

  // ---- metrics
  if (!o.metrics.listen.empty() && !o.metrics.enabled) {
    reject("metrics.listen", "empty while metrics.enabled is false (an endpoint needs counts to serve)",
           "\"" + o.metrics.listen + "\"");
  }
  // ---- access_log: its fd is looked at only when it will be written to.
  if (o.access_log.enabled && !o.access_log.sink &&
      (o.access_log.fd < 0 || ::fcntl(o.access_log.fd, F_GETFD) < 0)) {
    reject("access_log.fd", "an open file descriptor while access_log.enabled is true and access_log.sink is empty",
           std::to_string(o.access_log.fd));
  }
}

}  // namespace uringrpc::server
