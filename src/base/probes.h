// USDT probes (provider "uringrpc") for perf, bpftrace and SystemTap: connection accept and
// close, RPC start and end, loop wake-ups. Call sites are one line each; man/uringrpc-perf.7
// lists the probes and their arguments, tests/e2e/usdt_probes_test.py checks they are built.
#pragma once

// Every probe gets a semaphore: a counter in the ".probes" section that a tracer raises
// while it is attached (perf and bpftrace do so through the kernel's uprobe reference
// counter). A probe whose arguments are already in registers fires unconditionally: the
// site is a single nop plus an ELF note, and a load and a branch would cost more than it
// saves. A probe whose arguments cost something (rpc_end's duration needs a clock read at
// start and end) is guarded by its semaphore, so untraced servers never read the clock.
// With _SDT_HAS_SEMAPHORES every probe in a translation unit references its semaphore,
// so all of them are defined, once, in probes.cc.
#if defined(_SYS_SDT_H) && !defined(_SDT_HAS_SEMAPHORES)
#error "sys/sdt.h was included before base/probes.h without semaphores"
#endif
#ifndef _SDT_HAS_SEMAPHORES
#define _SDT_HAS_SEMAPHORES 1
#endif
#ifndef SDT_USE_VARIADIC
#define SDT_USE_VARIADIC 1
#endif
#include <sys/sdt.h>
#include <time.h>

#include <cstdint>

// The probes, their arguments (each an integer or a pointer; strings are char pointers):
//   conn_accept  fd, connection id, peer address ("ipv4:127.0.0.1:5000")
//   conn_close   fd, connection id, peer address          (just before the fd is closed)
//   rpc_start    call id, method path ("/pkg.Service/Method")
//   rpc_end      call id, method path, status code, duration in ns since rpc_start
//                (0 when no tracer was attached at rpc_start)
//   loop_wakeup  shard index, completions processed in this loop turn
// A call id is the Call's address: it pairs rpc_start with rpc_end while the call lives.
#define URINGRPC_PROBE_SEMAPHORES(X) X(conn_accept) X(conn_close) X(rpc_start) X(rpc_end) X(loop_wakeup)

#define URINGRPC_PROBE_DECLARE_SEMAPHORE_(name) extern unsigned short uringrpc_##name##_semaphore;
extern "C" {
URINGRPC_PROBE_SEMAPHORES(URINGRPC_PROBE_DECLARE_SEMAPHORE_)
}

// One line at a call site; arguments are evaluated whether or not anyone listens.
#define URINGRPC_PROBE(name, ...) STAP_PROBEV(uringrpc, name, __VA_ARGS__)

// True while a tracer is attached to the probe (relaxed: the tracer writes it from outside).
#define URINGRPC_PROBE_ENABLED(name) \
  __builtin_expect(__atomic_load_n(&uringrpc_##name##_semaphore, __ATOMIC_RELAXED) != 0, 0)

// For probes with costly arguments: they are evaluated only while a tracer is attached.
#define URINGRPC_PROBE_GUARDED(name, ...)                    \
  do {                                                       \
    if (URINGRPC_PROBE_ENABLED(name)) URINGRPC_PROBE(name, __VA_ARGS__); \
  } while (0)

namespace uringrpc::base::probes {

inline uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Nanoseconds since a now_ns() reading; 0 for a start that was never taken.
inline uint64_t since_ns(uint64_t start_ns) noexcept { return start_ns ? now_ns() - start_ns : 0; }

}  // namespace uringrpc::base::probes
