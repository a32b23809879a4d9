// ServerOptions: every range Server's constructor enforces, walked at its boundary (the
// last value accepted, the first rejected), and the defaults each layer gets through
// server/layer_options.cc, pinned to the documented ones (man uringrpc.7, OPTIONS).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

#include "server/layer_options.h"
#include "server/server_shard.h"
#include "uringrpc/server.h"

namespace uringrpc {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// The message of the std::invalid_argument that constructing a Server with these options
// throws, or "" when it is accepted.
std::string rejection(const std::function<void(ServerOptions&)>& change) {
  ServerOptions options;
  options.shards = 2;  // a fixed count, whatever this machine's CPUs
  change(options);
  try {
    Server server(options);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// The last accepted value and the first rejected one: the error names the field.
void expect_boundary(const std::string& field, const std::function<void(ServerOptions&)>& accepted,
                     const std::function<void(ServerOptions&)>& rejected) {
  EXPECT_EQ(rejection(accepted), "") << field;
  std::string why = rejection(rejected);
  EXPECT_NE(why, "") << field << ": accepted a value out of range";
  EXPECT_NE(why.find("ServerOptions::" + field + " is "), std::string::npos) << why;
  EXPECT_NE(why.find("must be"), std::string::npos) << why;
}

TEST(ServerOptions, DefaultsAreAccepted) {
  EXPECT_NO_THROW(Server{});
  EXPECT_EQ(rejection([](ServerOptions&) {}), "");
}

TEST(ServerOptions, ZeroShardsMeansOnePerCpuAndMoreThan1024AreRejected) {
  Server server{ServerOptions{}};
  EXPECT_GE(server.shard_count(), 1u);
  expect_boundary("shards", [](auto& o) { o.shards = 1024; }, [](auto& o) { o.shards = 1025; });
}

TEST(ServerOptions, OffloadThreadsAreOneTo1024) {
  expect_boundary("offload_threads", [](auto& o) { o.offload_threads = 1; }, [](auto& o) { o.offload_threads = 0; });
  expect_boundary("offload_threads", [](auto& o) { o.offload_threads = 1024; },
                  [](auto& o) { o.offload_threads = 1025; });
}

TEST(ServerOptions, NegativeDurationsAreRejected) {
  expect_boundary("connection.handshake_timeout", [](auto& o) { o.connection.handshake_timeout = milliseconds(0); },
                  [](auto& o) { o.connection.handshake_timeout = milliseconds(-1); });
  expect_boundary("connection.max_idle", [](auto& o) { o.connection.max_idle = milliseconds(0); },
                  [](auto& o) { o.connection.max_idle = milliseconds(-1); });
  expect_boundary("connection.max_age", [](auto& o) { o.connection.max_age = milliseconds(0); },
                  [](auto& o) { o.connection.max_age = milliseconds(-1); });
  expect_boundary("connection.max_age_grace", [](auto& o) { o.connection.max_age_grace = milliseconds(0); },
                  [](auto& o) { o.connection.max_age_grace = milliseconds(-1); });
  expect_boundary("keepalive.time", [](auto& o) { o.keepalive.time = milliseconds(0); },
                  [](auto& o) { o.keepalive.time = milliseconds(-1); });
  expect_boundary(
      "keepalive.timeout",
      [](auto& o) {
        o.keepalive.time = milliseconds(0);
        o.keepalive.timeout = milliseconds(0);
      },
      [](auto& o) {
        o.keepalive.time = milliseconds(0);
        o.keepalive.timeout = milliseconds(-1);
      });
  expect_boundary(
      "keepalive.min_client_ping_interval",
      [](auto& o) { o.keepalive.min_client_ping_interval = milliseconds(0); },
      [](auto& o) { o.keepalive.min_client_ping_interval = milliseconds(-1); });
  expect_boundary(
      "keepalive.min_client_ping_interval_idle",
      [](auto& o) {
        o.keepalive.min_client_ping_interval = milliseconds(0);
        o.keepalive.min_client_ping_interval_idle = milliseconds(0);
      },
      [](auto& o) {
        o.keepalive.min_client_ping_interval = milliseconds(0);
        o.keepalive.min_client_ping_interval_idle = milliseconds(-1);
      });
  expect_boundary("calls.stalled_stream_timeout", [](auto& o) { o.calls.stalled_stream_timeout = milliseconds(0); },
                  [](auto& o) { o.calls.stalled_stream_timeout = milliseconds(-1); });
}

TEST(ServerOptions, KeepaliveOnNeedsATimeout) {
  expect_boundary(
      "keepalive.timeout",
      [](auto& o) {
        o.keepalive.time = milliseconds(1000);
        o.keepalive.timeout = milliseconds(1);
      },
      [](auto& o) {
        o.keepalive.time = milliseconds(1000);
        o.keepalive.timeout = milliseconds(0);
      });
  EXPECT_EQ(rejection([](auto& o) {
              o.keepalive.time = milliseconds(0);
              o.keepalive.timeout = milliseconds(0);
            }),
            "")
      << "keepalive off: its timeout does not matter";
}

TEST(ServerOptions, IdlePingIntervalIsAtLeastTheBusyOne) {
  expect_boundary(
      "keepalive.min_client_ping_interval_idle",
      [](auto& o) {
        o.keepalive.min_client_ping_interval = milliseconds(5000);
        o.keepalive.min_client_ping_interval_idle = milliseconds(5000);
      },
      [](auto& o) {
        o.keepalive.min_client_ping_interval = milliseconds(5000);
        o.keepalive.min_client_ping_interval_idle = milliseconds(4999);
      });
}

TEST(ServerOptions, AtLeastOneConcurrentStream) {
  expect_boundary("http2.max_concurrent_streams", [](auto& o) { o.http2.max_concurrent_streams = 1; },
                  [](auto& o) { o.http2.max_concurrent_streams = 0; });
}

TEST(ServerOptions, StreamWindowIsOneTo2Pow31Minus1) {
  expect_boundary("http2.stream_window_bytes", [](auto& o) { o.http2.stream_window_bytes = 1; },
                  [](auto& o) { o.http2.stream_window_bytes = 0; });
  expect_boundary("http2.stream_window_bytes", [](auto& o) { o.http2.stream_window_bytes = (1u << 31) - 1; },
                  [](auto& o) { o.http2.stream_window_bytes = 1u << 31; });
}

TEST(ServerOptions, ConnectionWindowIs65535To2Pow31Minus1) {
  expect_boundary("http2.connection_window_bytes", [](auto& o) { o.http2.connection_window_bytes = 65535; },
                  [](auto& o) { o.http2.connection_window_bytes = 65534; });
  expect_boundary("http2.connection_window_bytes",
                  [](auto& o) { o.http2.connection_window_bytes = (1u << 31) - 1; },
                  [](auto& o) { o.http2.connection_window_bytes = 1u << 31; });
}

TEST(ServerOptions, HeaderListLimitIsAtLeastOne) {
  expect_boundary("http2.max_header_list_bytes", [](auto& o) { o.http2.max_header_list_bytes = 1; },
                  [](auto& o) { o.http2.max_header_list_bytes = 0; });
}

TEST(ServerOptions, QueuedOutputLimitsAreAtLeastOne) {
  expect_boundary("http2.max_queued_output_frames", [](auto& o) { o.http2.max_queued_output_frames = 1; },
                  [](auto& o) { o.http2.max_queued_output_frames = 0; });
  expect_boundary("http2.max_queued_output_bytes", [](auto& o) { o.http2.max_queued_output_bytes = 1; },
                  [](auto& o) { o.http2.max_queued_output_bytes = 0; });
}

TEST(ServerOptions, MemoryBudgetIsOffOrAtLeastOneBytePerShard) {
  // shards = 2 (rejection()): 1 byte would leave each shard a share of 0, which is no budget.
  expect_boundary("calls.max_buffered_bytes", [](auto& o) { o.calls.max_buffered_bytes = 2; },
                  [](auto& o) { o.calls.max_buffered_bytes = 1; });
  EXPECT_EQ(rejection([](auto& o) { o.calls.max_buffered_bytes = 0; }), "");
}

TEST(ServerOptions, ReceiveBuffersAre4KiBTo1MiB) {
  expect_boundary("loop.recv_buffer_bytes", [](auto& o) { o.loop.recv_buffer_bytes = 4096; },
                  [](auto& o) { o.loop.recv_buffer_bytes = 4095; });
  expect_boundary("loop.recv_buffer_bytes", [](auto& o) { o.loop.recv_buffer_bytes = 1u << 20; },
                  [](auto& o) { o.loop.recv_buffer_bytes = (1u << 20) + 1; });
}

TEST(ServerOptions, ReceiveBufferCountIsAPowerOfTwoUpTo32768) {
  expect_boundary("loop.recv_buffer_count", [](auto& o) { o.loop.recv_buffer_count = 1; },
                  [](auto& o) { o.loop.recv_buffer_count = 0; });
  expect_boundary("loop.recv_buffer_count", [](auto& o) { o.loop.recv_buffer_count = 4; },
                  [](auto& o) { o.loop.recv_buffer_count = 3; });
  expect_boundary("loop.recv_buffer_count", [](auto& o) { o.loop.recv_buffer_count = 32768; },
                  [](auto& o) { o.loop.recv_buffer_count = 65536; });
}

TEST(ServerOptions, CompletionBatchWaitIsZeroToOneSecond) {
  expect_boundary("loop.completion_batch_wait", [](auto& o) { o.loop.completion_batch_wait = microseconds(0); },
                  [](auto& o) { o.loop.completion_batch_wait = microseconds(-1); });
  expect_boundary("loop.completion_batch_wait",
                  [](auto& o) { o.loop.completion_batch_wait = microseconds(1'000'000); },
                  [](auto& o) { o.loop.completion_batch_wait = microseconds(1'000'001); });
}

TEST(ServerOptions, CompletionBatchSizeIsOneTo4096) {
  expect_boundary("loop.completion_batch_size", [](auto& o) { o.loop.completion_batch_size = 1; },
                  [](auto& o) { o.loop.completion_batch_size = 0; });
  expect_boundary("loop.completion_batch_size", [](auto& o) { o.loop.completion_batch_size = 4096; },
                  [](auto& o) { o.loop.completion_batch_size = 4097; });
}

// The values each layer ran with before the options were declared in one place.
TEST(ServerOptions, EachLayerGetsTheDocumentedDefaults) {
  const ServerOptions o;
  http2::SessionSettings h = server::session_settings(o);
  EXPECT_EQ(h.max_concurrent_streams, 100u);
  EXPECT_EQ(h.stream_window_bytes, 1u << 20);
  EXPECT_EQ(h.connection_window_bytes, 16u << 20);
  EXPECT_EQ(h.max_header_list_bytes, 16u << 10);
  EXPECT_EQ(h.max_ping_strikes, 2u);
  EXPECT_EQ(h.min_ping_interval_ms, 5u * 60 * 1000);
  EXPECT_EQ(h.min_ping_interval_idle_ms, 2u * 60 * 60 * 1000);
  EXPECT_EQ(h.keepalive_time_ms, 2u * 60 * 60 * 1000);
  EXPECT_EQ(h.keepalive_timeout_ms, 20u * 1000);
  EXPECT_EQ(h.max_empty_frames, 10u);
  EXPECT_EQ(h.reset_burst, 1000u);
  EXPECT_EQ(h.reset_refill_per_second, 33u);
  EXPECT_EQ(h.max_queued_output_frames, 10000u);
  EXPECT_EQ(h.max_queued_output_bytes, 1u << 20);

  rpc::RpcConfig r = server::rpc_config(o);
  EXPECT_EQ(r.max_receive_message_size, 4u << 20);
  EXPECT_EQ(r.max_send_message_size, SIZE_MAX) << "no send limit, as in gRPC";
  EXPECT_EQ(r.write_watermark, 256u << 10);
  EXPECT_EQ(r.read_watermark, 1u << 20) << "a stream's window";
  EXPECT_EQ(r.max_concurrent_rpcs, 0u);
  EXPECT_EQ(r.max_connection_idle_ms, 0u);
  EXPECT_EQ(r.max_connection_age_ms, 0u);
  EXPECT_EQ(r.max_connection_age_grace_ms, 0u);
  EXPECT_EQ(r.stalled_stream_timeout_ms, 5u * 60 * 1000);

  server::ShardSetup s = server::ShardSetup::from(o);
  EXPECT_EQ(s.loop.recv_buffer_size, 16u << 10);
  EXPECT_EQ(s.loop.recv_buffer_count, 512u);
  EXPECT_EQ(s.loop.batch_wait_usec, 20u);
  EXPECT_EQ(s.loop.batch_wait_events, 32u);
  EXPECT_EQ(s.tls_handshake_timeout_ms, 10000u);
  EXPECT_EQ(s.max_connections, 0u);

  EXPECT_EQ(o.shards, 0u);
  EXPECT_EQ(o.offload_threads, 2u);
  EXPECT_TRUE(o.listen.so_reuseport);
  EXPECT_FALSE(o.listen.share_port);
  EXPECT_EQ(o.calls.max_buffered_bytes, size_t{1} << 30);
  EXPECT_EQ(o.calls.max_send_message_bytes, SIZE_MAX);
  EXPECT_FALSE(o.loop.pin_shards_to_cpus);
  EXPECT_FALSE(o.listen.steer_to_receiving_cpu);
  EXPECT_FALSE(o.listen.direct_descriptors);
  EXPECT_EQ(o.listen.direct_slots_per_shard, 0u);
}

TEST(ServerOptions, DirectSlotsAreUpTo2Pow20AndOnlyWithDirectDescriptors) {
  expect_boundary(
      "listen.direct_slots_per_shard",
      [](auto& o) {
        o.listen.direct_descriptors = true;
        o.listen.direct_slots_per_shard = size_t{1} << 20;
      },
      [](auto& o) {
        o.listen.direct_descriptors = true;
        o.listen.direct_slots_per_shard = (size_t{1} << 20) + 1;
      });
  expect_boundary(
      "listen.direct_slots_per_shard", [](auto& o) { o.listen.direct_slots_per_shard = 0; },
      [](auto& o) { o.listen.direct_slots_per_shard = 64; });
}

}  // namespace
}  // namespace uringrpc
