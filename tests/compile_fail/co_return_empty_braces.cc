// Must not compile: in a Task<Resp>, `co_return {};` could be an empty response or an OK
// Status (which has no response): the overloads make it ambiguous instead of guessing.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: return_value
// expect: ambiguous
#include <uringrpc/uringrpc.h>

uringrpc::Task<std::string> handler(std::string, uringrpc::ServerContext&) {
  co_return {};
}
