// Must not compile: ctx.write(msg) without co_await encodes the message and drops it.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: WriteAwaiter
// expect: nodiscard
#include <uringrpc/uringrpc.h>

uringrpc::Task<void> handler(std::string request, uringrpc::ServerContext& ctx) {
  ctx.write(request);
  co_return;
}
