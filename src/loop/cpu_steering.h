// Steering new connections to the shard running on the CPU that received them: a classic BPF
// program attached to a SO_REUSEPORT group (SO_ATTACH_REUSEPORT_CBPF) that maps the receiving
// CPU to a socket's index in the group. The server attaches it at start() when
// ServerOptions::listen.steer_to_receiving_cpu is set.
#pragma once

#include <vector>

namespace uringrpc::loop {

// `fd` is one listener of a SO_REUSEPORT group whose sockets joined (listen()) in shard
// order; shard_cpus[i] is the CPU shard i is pinned to. A connection received on CPU c goes
// to the first shard pinned to c, one received on a CPU no shard is pinned to to shard
// c % shards. Returns 0 or the errno of setsockopt.
int attach_cpu_steering(int fd, const std::vector<int>& shard_cpus);

// Pins the calling thread to `cpu`; returns 0 or an errno.
int pin_current_thread(int cpu);

}  // namespace uringrpc::loop
