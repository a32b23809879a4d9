// Must not compile: calling a coroutine returning Task without co_await runs nothing.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: Task
// expect: nodiscard
#include <uringrpc/uringrpc.h>

uringrpc::Task<void> audit(uringrpc::ServerContext& ctx) {
  co_await ctx.write(std::string("audit"));
}

uringrpc::Task<void> handler(std::string, uringrpc::ServerContext& ctx) {
  audit(ctx);
  co_return;
}
