// Must not compile: offload(fn) without co_await never runs fn.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: offload
// expect: nodiscard
#include <uringrpc/uringrpc.h>

uringrpc::Task<void> handler(std::string, uringrpc::ServerContext&) {
  uringrpc::offload([] { return 42; });
  co_return;
}
