// Must not compile: a ServerContext belongs to one call and only the call makes it.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: private
#include <uringrpc/uringrpc.h>

void make(uringrpc::rpc::Call& call) {
  uringrpc::ServerContext ctx(call);
  (void)ctx.method();
}
