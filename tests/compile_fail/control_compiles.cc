// Must compile: the correct twin of every other snippet here, so compile_fail_test.cc
// knows its compiler command works and the failures come from the misuse alone.
#include <uringrpc/protobuf.h>
#include <uringrpc/uringrpc.h>

#include <chrono>

uringrpc::Task<void> audit(uringrpc::ServerContext& ctx) {
  co_await ctx.write(std::string("audit"));
}

uringrpc::Stream<std::string> numbers(std::string, uringrpc::ServerContext&) {
  co_yield "one";
}

uringrpc::Task<void> handler(std::string request, uringrpc::ServerContext& ctx) {
  bool sent = co_await ctx.write(request);
  auto next = co_await ctx.read<std::string>();
  co_await uringrpc::sleep_for(std::chrono::milliseconds(10));
  int n = co_await uringrpc::offload([] { return 42; });
  co_await audit(ctx);
  co_await numbers(request, ctx);
  (void)sent, (void)next, (void)n;
}

uringrpc::Task<std::string> get(std::string name, uringrpc::ServerContext&) {
  if (name.empty()) co_return uringrpc::Status{uringrpc::StatusCode::NOT_FOUND, "no such user"};
  co_return std::string();
}

uringrpc::Task<std::string> sum(uringrpc::Reader<std::string>& reader, uringrpc::ServerContext&) {
  while (auto r = co_await reader.next()) {
    if (r->empty()) co_return uringrpc::Status{uringrpc::StatusCode::INVALID_ARGUMENT, "empty"};
  }
  co_return "done";
}

void add(uringrpc::Server& server) {
  server.add_method("/t.S/Get", uringrpc::unary(get));
  server.add_method("/t.S/Sum", uringrpc::client_streaming(sum));
  server.add_method("/t.S/Handle", uringrpc::server_streaming(handler));
  server.add_method("/t.S/Numbers", uringrpc::server_streaming(numbers));
}
