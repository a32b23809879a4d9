// The semaphores of the USDT probes declared in probes.h: one counter per probe, in the
// ".probes" section where tracers look for them (the stapsdt note of each probe site
// records its semaphore's address). Zero unless a tracer is attached.
#include "base/probes.h"

#define URINGRPC_PROBE_DEFINE_SEMAPHORE_(name) \
  __attribute__((section(".probes"), used)) unsigned short uringrpc_##name##_semaphore = 0;
extern "C" {
URINGRPC_PROBE_SEMAPHORES(URINGRPC_PROBE_DEFINE_SEMAPHORE_)
}
