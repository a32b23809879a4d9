// Must not compile: calling a Stream coroutine without co_await yields nothing.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: Stream
// expect: nodiscard
#include <uringrpc/uringrpc.h>

uringrpc::Stream<std::string> numbers(std::string, uringrpc::ServerContext&) {
  co_yield "one";
}

uringrpc::Task<void> handler(std::string request, uringrpc::ServerContext& ctx) {
  numbers(request, ctx);
  co_return;
}
