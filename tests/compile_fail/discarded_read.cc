// Must not compile: ctx.read() without co_await reads nothing.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: ReadAwaiter
// expect: nodiscard
#include <uringrpc/uringrpc.h>

uringrpc::Task<void> handler(std::string, uringrpc::ServerContext& ctx) {
  ctx.read<std::string>();
  co_return;
}
