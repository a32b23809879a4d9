// ServerOptions, translated for each layer below server/ (which must not see it), and
// checked once. ServerImpl (server.cc) calls these; so do unit tests and fuzzers that build
// one layer alone, from ServerOptions{} changed where they test something.
#pragma once

#include "http2/session.h"
#include "loop/shard.h"
#include "rpc/call.h"
#include "uringrpc/server.h"

namespace uringrpc::server {

// What each HTTP/2 session advertises and holds its peer to.
http2::SessionSettings session_settings(const ServerOptions& options);
// The rpc layer's limits; methods, the RPC limit and budgets are left null for the caller.
rpc::RpcConfig rpc_config(const ServerOptions& options);
// A shard loop's sizing; index 0 and no offload pool, for the caller to set.
loop::ShardConfig shard_config(const ServerOptions& options);

// Throws std::invalid_argument naming the first field out of its range, and the range.
// `shards` is the count the server will run (options.shards, or the CPUs when that is 0).
void validate(const ServerOptions& options, unsigned shards);

}  // namespace uringrpc::server
