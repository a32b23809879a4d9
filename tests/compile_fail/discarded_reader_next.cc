// Must not compile: reader.next() without co_await reads nothing.
// Compiled by compile_fail_test.cc, which expects every "// expect:" text in the diagnostics.
// expect: ReadAwaiter
// expect: nodiscard
#include <uringrpc/uringrpc.h>

uringrpc::Task<std::string> handler(uringrpc::Reader<std::string>& reader, uringrpc::ServerContext&) {
  reader.next();
  co_return "done";
}
