// Must not compile: sleep_for(d) without co_await does not wait.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: SleepAwaiter
// expect: nodiscard
#include <uringrpc/uringrpc.h>

#include <chrono>

uringrpc::Task<void> handler(std::string, uringrpc::ServerContext&) {
  uringrpc::sleep_for(std::chrono::milliseconds(10));
  co_return;
}
