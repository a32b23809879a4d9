// Reuseport CBPF steering and thread pinning (cpu_steering.h).
#include "loop/cpu_steering.h"

#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>

namespace uringrpc::loop {

int attach_cpu_steering(int fd, const std::vector<int>& shard_cpus) {
  const uint32_t shards = static_cast<uint32_t>(shard_cpus.size());
  if (shards == 0) return EINVAL;
  // A = the receiving CPU; one "A == cpu ? return shard" pair per shard (the first shard of
  // each CPU wins, as a jump to its return); otherwise A % shards. 2 instructions per shard
  // plus 3 stays far below BPF_MAXINSNS (4096) for the 1024 shards a server may have.
  std::vector<sock_filter> prog;
  prog.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU)));
  for (uint32_t i = 0; i < shards; ++i) {
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(shard_cpus[i]), 0, 1));
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, i));
  }
  prog.push_back(BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, shards));
  prog.push_back(BPF_STMT(BPF_RET | BPF_A, 0));
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof fprog) != 0) return errno;
  return 0;
}

int pin_current_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

}  // namespace uringrpc::loop
