// The uringrpc side of the benchmark (perf/): grpc.testing.TestService's EmptyCall, UnaryCall,
// StreamingOutputCall and StreamingInputCall, doing the same work per call as the anchors in
// perf/anchors/. Served through the class protoc-gen-uringrpc generates (what users run);
// `--api raw` registers the same handlers by path instead, to measure what the generated
// layer costs. Usage: bench-server --port N [--shards K] [--tls-cert FILE --tls-key FILE]
//   [--batch-wait-us U --batch-size B]   (ServerOptions::loop.completion_batch_wait / _size)
//   [--api generated|raw] [--compression none|gzip|deflate]   (calls.default_compression)
//   [--metrics off|on]   (ServerOptions::metrics.enabled, counted but never scraped)
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include <uringrpc/protobuf.h>
#include <uringrpc/uringrpc.h>

#include "grpc/testing/empty.pb.h"
#include "grpc/testing/messages.pb.h"
#include "grpc/testing/test.uringrpc.pb.h"
#include "anchors/stop_waiter.h"

namespace gt = grpc::testing;

namespace {

// Every server in the benchmark fills payloads the same way: `size` zero bytes, built per
// message, so the figures compare the RPC machinery and not payload tricks.
void fill_payload(gt::Payload* payload, int32_t size) {
  payload->mutable_body()->assign(size > 0 ? static_cast<size_t>(size) : 0, '\0');
}

uringrpc::Task<gt::Empty> empty_call(gt::Empty, uringrpc::ServerContext&) {
  co_return gt::Empty();
}

// response_type is ignored (COMPRESSABLE is the only type the proto still defines).
uringrpc::Task<gt::SimpleResponse> unary_call(gt::SimpleRequest request,
                                              uringrpc::ServerContext&) {
  gt::SimpleResponse response;
  fill_payload(response.mutable_payload(), request.response_size());
  co_return response;
}

// One message per response_parameters entry, of that entry's size. interval_us is ignored
// by every server in the benchmark (the scenarios send 0), so streaming measures sending.
uringrpc::Stream<gt::StreamingOutputCallResponse> streaming_output_call(
    gt::StreamingOutputCallRequest request, uringrpc::ServerContext& ctx) {
  for (const gt::ResponseParameters& params : request.response_parameters()) {
    if (ctx.cancelled()) break;
    gt::StreamingOutputCallResponse response;
    fill_payload(response.mutable_payload(), params.size());
    co_yield response;
  }
}

uringrpc::Task<gt::StreamingInputCallResponse> streaming_input_call(
    uringrpc::Reader<gt::StreamingInputCallRequest>& reader, uringrpc::ServerContext&) {
  int64_t total = 0;
  while (auto request = co_await reader.next()) total += request->payload().body().size();
  gt::StreamingInputCallResponse response;
  response.set_aggregated_payload_size(static_cast<int32_t>(total));
  co_return response;
}

// The generated service, written as a service's author writes one: the unary overrides are
// the coroutines themselves (what the raw path's functions do, without handing the request
// on by value once more); the streaming ones hand the call to the raw path's functions.
class BenchService : public gt::TestServiceService {
  uringrpc::Task<gt::Empty> EmptyCall(gt::Empty, uringrpc::ServerContext&) override {
    co_return gt::Empty();
  }
  uringrpc::Task<gt::SimpleResponse> UnaryCall(gt::SimpleRequest request, uringrpc::ServerContext&) override {
    gt::SimpleResponse response;
    fill_payload(response.mutable_payload(), request.response_size());
    co_return response;
  }
  uringrpc::Stream<gt::StreamingOutputCallResponse> StreamingOutputCall(
      gt::StreamingOutputCallRequest request, uringrpc::ServerContext& ctx) override {
    return streaming_output_call(std::move(request), ctx);
  }
  uringrpc::Task<gt::StreamingInputCallResponse> StreamingInputCall(
      uringrpc::Reader<gt::StreamingInputCallRequest>& reader,
      uringrpc::ServerContext& ctx) override {
    return streaming_input_call(reader, ctx);
  }
};

void add_raw_methods(uringrpc::Server& server) {
  server.add_method("/grpc.testing.TestService/EmptyCall", uringrpc::unary(empty_call));
  server.add_method("/grpc.testing.TestService/UnaryCall", uringrpc::unary(unary_call));
  server.add_method("/grpc.testing.TestService/StreamingOutputCall",
                    uringrpc::server_streaming(streaming_output_call));
  server.add_method("/grpc.testing.TestService/StreamingInputCall",
                    uringrpc::client_streaming(streaming_input_call));
}

bool parse_compression(std::string_view name, uringrpc::Compression& out) {
  if (name == "none") out = uringrpc::Compression::kNone;
  else if (name == "gzip") out = uringrpc::Compression::kGzip;
  else if (name == "deflate") out = uringrpc::Compression::kDeflate;
  else return false;
  return true;
}

bool parse_on_off(std::string_view value, bool& out) {
  if (value != "on" && value != "off") return false;
  out = value == "on";
  return true;
}

template <class N>
bool parse_number(const char* text, N& out) {
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --port N [--shards K] [--tls-cert FILE --tls-key FILE] [--batch-wait-us U] "
               "[--batch-size B] [--api generated|raw] [--compression none|gzip|deflate] [--metrics off|on] "
               "[--pin off|on] [--steer off|on] [--max-concurrent N] [--direct off|on] [--direct-slots N]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bench::block_stop_signals();  // before the shards start: they inherit the mask
  unsigned port = 0;
  bool have_port = false;
  unsigned batch_wait_us = 0;
  bool raw_api = false;
  std::string tls_cert, tls_key;
  uringrpc::ServerOptions options;
  // One shard: the benchmark pins the server to one core; --shards lets a user try more.
  options.shards = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    const char* value = argv[++i];
    if (flag == "--port" && parse_number(value, port) && port < 65536) {
      have_port = true;
    } else if (flag == "--shards" && parse_number(value, options.shards)) {
    } else if (flag == "--batch-wait-us" && parse_number(value, batch_wait_us)) {
      options.loop.completion_batch_wait = std::chrono::microseconds(batch_wait_us);
    } else if (flag == "--batch-size" && parse_number(value, options.loop.completion_batch_size)) {
    } else if (flag == "--api" && (value == std::string_view("raw") || value == std::string_view("generated"))) {
      raw_api = value == std::string_view("raw");
    } else if (flag == "--compression" && parse_compression(value, options.calls.default_compression)) {
    } else if (flag == "--metrics" && (value == std::string_view("on") || value == std::string_view("off"))) {
      options.metrics.enabled = value == std::string_view("on");
    } else if (flag == "--pin" && parse_on_off(value, options.loop.pin_shards_to_cpus)) {
    } else if (flag == "--steer" && parse_on_off(value, options.listen.steer_to_receiving_cpu)) {
    } else if (flag == "--direct" && parse_on_off(value, options.listen.direct_descriptors)) {
    } else if (flag == "--direct-slots" && parse_number(value, options.listen.direct_slots_per_shard)) {
    } else if (flag == "--max-concurrent" && parse_number(value, options.calls.max_concurrent)) {
    } else if (flag == "--tls-cert") {
      tls_cert = value;
    } else if (flag == "--tls-key") {
      tls_key = value;
    } else {
      return usage(argv[0]);
    }
  }
  if (!have_port || tls_cert.empty() != tls_key.empty()) return usage(argv[0]);

  BenchService service;  // declared before the server, so that it outlives it
  uringrpc::Server server(options);
  if (raw_api) {
    add_raw_methods(server);
  } else {
    server.add_service(service);
  }
  // Loopback only, and the same address in every server of the benchmark.
  std::string address = "127.0.0.1:" + std::to_string(port);
  int bound = 0;
  try {
    bound = tls_cert.empty()
                ? server.add_insecure_port(address)
                : server.add_secure_port(address,
                                         uringrpc::TlsCredentials::from_files(tls_cert, tls_key));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  server.start();
  std::cout << "listening on " << bound << std::endl;  // endl flushes: the runner waits for it

  // Seen under valgrind 3.19: once the shard idles in io_uring_enter this thread no longer
  // gets to run (the shard seems to keep valgrind's thread lock), so SIGTERM stays pending
  // and only SIGKILL ends the server; the gRPC C++ anchor stops normally there.
  bench::wait_for_stop();
  server.stop(std::chrono::seconds(2));
  return 0;
}
