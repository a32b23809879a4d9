// Server interceptors seen by the real gRPC C++ client: an authentication check that refuses
// calls before their handler runs (synchronous and co_awaiting), the order of several
// interceptors, a throwing interceptor, and what the after-hook learns about unary,
// streaming, cancelled, deadline-exceeded and failed calls.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../common/grpc_test_client.h"
#include "../common/h2_frames.h"
#include "../common/test_certs.h"
#include "uringrpc/uringrpc.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using uringrpc::Bytes;
using uringrpc::CallStats;
using uringrpc::Interceptor;
using uringrpc::ServerContext;
using uringrpc::StatusCode;
using uringrpc::Task;
using uringrpc::testing::CallResult;
using uringrpc::testing::describe;
using uringrpc::testing::make_channel;
using uringrpc::testing::StreamingCall;
using uringrpc::testing::unary_call;

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

// What the interceptors and handlers of one test did, in order, from any shard thread.
struct Journal {
  std::mutex mu;
  std::vector<std::string> events;
  struct Ended {
    std::string method;
    CallStats stats;
    std::string message;
  };
  std::vector<Ended> ended;

  void add(std::string e) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(std::move(e));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> l(mu);
    return events;
  }
  size_t ended_count() {
    std::lock_guard<std::mutex> l(mu);
    return ended.size();
  }
  Ended last_ended() {
    std::lock_guard<std::mutex> l(mu);
    return ended.back();
  }
  void clear() {
    std::lock_guard<std::mutex> l(mu);
    events.clear();
    ended.clear();
  }
};

// Logs "<name>.before" and "<name>.after"; with record_stats, keeps each call's CallStats.
class Recorder : public Interceptor {
 public:
  Recorder(Journal& j, std::string name, bool record_stats = false)
      : j_(j), name_(std::move(name)), record_stats_(record_stats) {}
  Task<void> before(ServerContext&) override {
    j_.add(name_ + ".before");
    co_return;
  }
  void after(const ServerContext& ctx, const CallStats& stats) override {
    j_.add(name_ + ".after");
    if (record_stats_) {
      std::lock_guard<std::mutex> l(j_.mu);
      j_.ended.push_back({std::string(ctx.method()), stats, std::string(stats.message)});
    }
  }

 private:
  Journal& j_;
  std::string name_;
  bool record_stats_;
};

// Accepts "authorization: Bearer <token>" when the token is "let-me-in". The async variant
// checks the token the way one that asks a token service would: it co_awaits a timer and
// an offloaded (blocking) lookup before it decides.
class BearerAuth : public Interceptor {
 public:
  BearerAuth(Journal& j, bool async) : j_(j), async_(async) {}
  Task<void> before(ServerContext& ctx) override {
    j_.add("auth.before");
    auto header = ctx.client_metadata_value("authorization");
    std::string token;
    if (header && header->starts_with("Bearer ")) token = std::string(header->substr(7));
    bool valid;
    if (async_) {
      co_await uringrpc::sleep_for(5ms);
      // A named lambda: g++ 12 destroys a capturing lambda temporary inside a co_await
      // expression twice (the std::string capture's double free).
      auto lookup = [token] {
        std::this_thread::sleep_for(2ms);  // a blocking lookup, off the shard
        return token == "let-me-in";
      };
      valid = co_await uringrpc::offload(std::move(lookup));
      j_.add("auth.checked");
    } else {
      valid = token == "let-me-in";
    }
    if (!valid) ctx.abort(StatusCode::UNAUTHENTICATED, header ? "invalid token" : "missing bearer token");
    ctx.add_initial_metadata("x-auth", "ok");
  }
  void after(const ServerContext&, const CallStats& stats) override {
    j_.add(std::string("auth.after:") + std::string(uringrpc::status_code_name(stats.code)));
  }

 private:
  Journal& j_;
  bool async_;
};

// Throws from its before-hook when the call carries "x-throw: before", from its after-hook
// with "x-throw: after".
class Thrower : public Interceptor {
 public:
  explicit Thrower(Journal& j) : j_(j) {}
  Task<void> before(ServerContext& ctx) override {
    j_.add("thrower.before");
    if (ctx.client_metadata_value("x-throw") == "before") throw std::runtime_error("interceptor broke");
    co_return;
  }
  void after(const ServerContext& ctx, const CallStats&) override {
    j_.add("thrower.after");
    if (ctx.client_metadata_value("x-throw") == "after") throw std::runtime_error("after-hook broke");
  }

 private:
  Journal& j_;
};

// An interceptor that overrides nothing: the defaults must be harmless.
class Nothing : public Interceptor {};

class InterceptorE2e : public ::testing::Test {
 protected:
  // Starts a server with `interceptors`, in order, and the test methods.
  void start(std::vector<std::shared_ptr<Interceptor>> interceptors, unsigned shards = 1) {
    server_ = std::make_unique<uringrpc::Server>(uringrpc::ServerOptions{.shards = shards});
    for (auto& i : interceptors) server_->add_interceptor(i);
    server_->add_method("/e2e.Icpt/Echo", uringrpc::unary([this](Bytes req, ServerContext&) -> Task<Bytes> {
                          handler_runs_.fetch_add(1);
                          j_.add("handler");
                          co_return req;
                        }));
    // Answers the request's length in messages of 100 bytes each.
    server_->add_method("/e2e.Icpt/Stream", uringrpc::server_streaming([](Bytes req, ServerContext& ctx) -> Task<void> {
                          for (size_t i = 0; i < req.size(); ++i) {
                            co_await ctx.write(Bytes::copy(std::string(100, 'x')));
                          }
                        }));
    // Reads messages until the client half-closes; never answers (cancel and deadline tests).
    server_->add_method("/e2e.Icpt/Hang", uringrpc::bidi_streaming([this](uringrpc::Reader<Bytes>& reader,
                                                                          ServerContext&) -> Task<void> {
                          while (auto m = co_await reader.next()) reads_.fetch_add(1);
                          co_await uringrpc::sleep_for(60s);
                        }));
    server_->add_method("/e2e.Icpt/Throw", uringrpc::unary([](Bytes, ServerContext&) -> Task<Bytes> {
                          throw std::logic_error("handler broke");
                          co_return Bytes{};
                        }));
    port_ = server_->add_insecure_port("127.0.0.1:0");
    server_->start();
    channel_ = make_channel("127.0.0.1:" + std::to_string(port_));
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  // Waits for the after-hooks of `n` calls in all (they run once the stream is closed,
  // which may be just after the client saw the status).
  void wait_ended(size_t n) {
    ASSERT_TRUE(wait_until([&] { return j_.ended_count() >= n; })) << "after-hooks seen: " << j_.ended_count();
  }

  Journal j_;
  std::atomic<int> handler_runs_{0};
  std::atomic<int> reads_{0};
  std::unique_ptr<uringrpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(InterceptorE2e, AuthRefusesCallsWithoutAValidBearerTokenBeforeTheHandlerRuns) {
  start({std::make_shared<BearerAuth>(j_, false)});
  CallResult none = unary_call(channel_, "/e2e.Icpt/Echo", "hi");
  EXPECT_EQ(none.code, grpc::StatusCode::UNAUTHENTICATED) << describe(none);
  EXPECT_EQ(none.details, "missing bearer token");
  CallResult bad = unary_call(channel_, "/e2e.Icpt/Echo", "hi", 4s, {{"authorization", "Bearer guess"}});
  EXPECT_EQ(bad.code, grpc::StatusCode::UNAUTHENTICATED) << describe(bad);
  EXPECT_EQ(bad.details, "invalid token");
  CallResult basic = unary_call(channel_, "/e2e.Icpt/Echo", "hi", 4s, {{"authorization", "Basic let-me-in"}});
  EXPECT_EQ(basic.code, grpc::StatusCode::UNAUTHENTICATED) << describe(basic);
  EXPECT_EQ(handler_runs_.load(), 0);

  CallResult good = unary_call(channel_, "/e2e.Icpt/Echo", "hi", 4s, {{"authorization", "Bearer let-me-in"}});
  ASSERT_TRUE(good.ok()) << describe(good);
  ASSERT_EQ(good.responses.size(), 1u);
  EXPECT_EQ(good.responses[0], "hi");
  EXPECT_EQ(handler_runs_.load(), 1);
  // Response metadata added by the before-hook reaches the client.
  auto it = good.initial_metadata.find("x-auth");
  ASSERT_NE(it, good.initial_metadata.end());
  EXPECT_EQ(it->second, "ok");
}

TEST_F(InterceptorE2e, AsyncAuthCoAwaitsItsCheckThenRefusesOrAccepts) {
  start({std::make_shared<BearerAuth>(j_, true)}, 2);
  // Several at once: each check suspends (timer, then the offload pool) without blocking its
  // shard, so the calls' checks overlap.
  std::vector<std::future<CallResult>> calls;
  for (int i = 0; i < 8; ++i) {
    uringrpc::testing::ClientMetadata md;
    if (i % 2 == 0) md.emplace("authorization", "Bearer let-me-in");
    else md.emplace("authorization", "Bearer nope");
    calls.push_back(uringrpc::testing::start_unary_call(channel_, "/e2e.Icpt/Echo", "m" + std::to_string(i), 4s, md));
  }
  for (int i = 0; i < 8; ++i) {
    CallResult r = calls[i].get();
    if (i % 2 == 0) {
      EXPECT_TRUE(r.ok()) << i << ": " << describe(r);
    } else {
      EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED) << i << ": " << describe(r);
    }
  }
  EXPECT_EQ(handler_runs_.load(), 4);
  auto events = j_.snapshot();
  EXPECT_EQ(std::count(events.begin(), events.end(), "auth.checked"), 8);
}

TEST_F(InterceptorE2e, BeforeHooksRunInRegistrationOrderAfterHooksInReverse) {
  start({std::make_shared<Recorder>(j_, "a"), std::make_shared<Recorder>(j_, "b"), std::make_shared<Nothing>(),
         std::make_shared<Recorder>(j_, "c", true)});
  CallResult r = unary_call(channel_, "/e2e.Icpt/Echo", "x");
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_TRUE(wait_until([&] { return j_.snapshot().size() >= 7; }));
  EXPECT_EQ(j_.snapshot(), (std::vector<std::string>{"a.before", "b.before", "c.before", "handler", "c.after",
                                                     "b.after", "a.after"}));
}

TEST_F(InterceptorE2e, ARefusalSkipsLaterInterceptorsAndTheHandlerButRunsEarlierAfterHooks) {
  start({std::make_shared<Recorder>(j_, "a", true), std::make_shared<BearerAuth>(j_, false),
         std::make_shared<Recorder>(j_, "c")});
  CallResult r = unary_call(channel_, "/e2e.Icpt/Echo", "x");
  EXPECT_EQ(r.code, grpc::StatusCode::UNAUTHENTICATED) << describe(r);
  wait_ended(1);
  EXPECT_EQ(j_.snapshot(), (std::vector<std::string>{"a.before", "auth.before", "auth.after:UNAUTHENTICATED",
                                                     "a.after"}));
  EXPECT_EQ(j_.last_ended().stats.code, StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(j_.last_ended().message, "missing bearer token");
  EXPECT_EQ(j_.last_ended().stats.messages_sent, 0u);
}

TEST_F(InterceptorE2e, ABeforeHookThatThrowsEndsTheCallWithUnknownAndTheServerGoesOn) {
  start({std::make_shared<Recorder>(j_, "a", true), std::make_shared<Thrower>(j_), std::make_shared<Recorder>(j_, "c")});
  CallResult r = unary_call(channel_, "/e2e.Icpt/Echo", "x", 4s, {{"x-throw", "before"}});
  EXPECT_EQ(r.code, grpc::StatusCode::UNKNOWN) << describe(r);
  EXPECT_NE(r.details.find("interceptor broke"), std::string::npos) << r.details;
  wait_ended(1);
  EXPECT_EQ(j_.snapshot(), (std::vector<std::string>{"a.before", "thrower.before", "thrower.after", "a.after"}));
  EXPECT_EQ(j_.last_ended().stats.code, StatusCode::UNKNOWN);
  EXPECT_EQ(handler_runs_.load(), 0);

  // An after-hook that throws changes nothing for the client, nor for the other hooks.
  j_.clear();
  CallResult after = unary_call(channel_, "/e2e.Icpt/Echo", "y", 4s, {{"x-throw", "after"}});
  ASSERT_TRUE(after.ok()) << describe(after);
  wait_ended(1);
  EXPECT_EQ(j_.snapshot(), (std::vector<std::string>{"a.before", "thrower.before", "c.before", "handler", "c.after",
                                                     "thrower.after", "a.after"}));

  CallResult next = unary_call(channel_, "/e2e.Icpt/Echo", "z");
  ASSERT_TRUE(next.ok()) << describe(next);
  EXPECT_EQ(next.responses.at(0), "z");
  EXPECT_EQ(handler_runs_.load(), 2);
}

TEST_F(InterceptorE2e, AfterHookSeesCodeAndCountsOfAUnaryCall) {
  start({std::make_shared<Recorder>(j_, "r", true)});
  CallResult r = unary_call(channel_, "/e2e.Icpt/Echo", std::string(10, 'q'));
  ASSERT_TRUE(r.ok()) << describe(r);
  wait_ended(1);
  auto e = j_.last_ended();
  EXPECT_EQ(e.method, "/e2e.Icpt/Echo");
  EXPECT_EQ(e.stats.code, StatusCode::OK);
  EXPECT_EQ(e.message, "");
  EXPECT_EQ(e.stats.messages_received, 1u);
  EXPECT_EQ(e.stats.bytes_received, 15u);  // 5-byte prefix + 10
  EXPECT_EQ(e.stats.messages_sent, 1u);
  EXPECT_EQ(e.stats.bytes_sent, 15u);
  EXPECT_GT(e.stats.duration.count(), 0);
  EXPECT_LT(e.stats.duration, 4s);
  auto age = std::chrono::system_clock::now() - e.stats.start;
  EXPECT_GE(age, 0s);
  EXPECT_LT(age, 10s);
}

TEST_F(InterceptorE2e, AfterHookSeesCountsOfAServerStreamingCall) {
  start({std::make_shared<Recorder>(j_, "r", true)});
  StreamingCall call(channel_, "/e2e.Icpt/Stream");
  ASSERT_TRUE(call.write_last("abc"));  // three responses
  while (call.read()) {
  }
  CallResult r = call.finish();
  ASSERT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.responses.size(), 3u);
  wait_ended(1);
  auto e = j_.last_ended();
  EXPECT_EQ(e.stats.code, StatusCode::OK);
  EXPECT_EQ(e.stats.messages_received, 1u);
  EXPECT_EQ(e.stats.bytes_received, 8u);
  EXPECT_EQ(e.stats.messages_sent, 3u);
  EXPECT_EQ(e.stats.bytes_sent, 3u * 105u);
}

TEST_F(InterceptorE2e, AfterHookSeesACancelledCall) {
  start({std::make_shared<Recorder>(j_, "r", true)});
  {
    StreamingCall call(channel_, "/e2e.Icpt/Hang", 10s);
    ASSERT_TRUE(call.write("one"));
    ASSERT_TRUE(call.write("two"));
    ASSERT_TRUE(wait_until([&] { return reads_.load() == 2; }));
    EXPECT_EQ(j_.ended_count(), 0u);
    call.cancel();
    CallResult r = call.finish();
    EXPECT_EQ(r.code, grpc::StatusCode::CANCELLED) << describe(r);
  }
  wait_ended(1);
  auto e = j_.last_ended();
  EXPECT_EQ(e.stats.code, StatusCode::CANCELLED);
  EXPECT_EQ(e.stats.messages_received, 2u);
  EXPECT_EQ(e.stats.bytes_received, 16u);
  EXPECT_EQ(e.stats.messages_sent, 0u);
  EXPECT_EQ(e.stats.bytes_sent, 0u);
}

// The server's deadline, seen by a client that leaves it to the server: a raw HTTP/2 client
// sends grpc-timeout and never resets the stream (the gRPC client's own timer fires at the
// same instant, and its RST_STREAM can win the race: that call ends CANCELLED).
TEST_F(InterceptorE2e, AfterHookSeesADeadlineExceededCall) {
  start({std::make_shared<Recorder>(j_, "r", true)});
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  namespace h2 = uringrpc::testing::h2;
  std::string out = h2::client_hello();
  out += h2::frame(h2::kHeaders, h2::kEndHeaders, 1, h2::request_block("/e2e.Icpt/Hang") + h2::literal("grpc-timeout", "200m"));
  out += h2::frame(h2::kData, h2::kEndStream, 1, h2::grpc_message("slow"));
  ASSERT_EQ(::write(fd, out.data(), out.size()), static_cast<ssize_t>(out.size()));
  wait_ended(1);
  ::close(fd);
  auto e = j_.last_ended();
  EXPECT_EQ(e.stats.code, StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(e.message, "Deadline Exceeded");
  EXPECT_EQ(e.stats.messages_received, 1u);
  EXPECT_EQ(e.stats.bytes_received, 9u);
  // About the 200 ms of grpc-timeout, not the handler's 60 s sleep.
  EXPECT_GE(e.stats.duration, 190ms);
  EXPECT_LT(e.stats.duration, 2s);
}

// The same with the real client: whichever deadline fires first ends the call.
TEST_F(InterceptorE2e, AfterHookSeesTheEndOfACallPastTheClientsDeadline) {
  start({std::make_shared<Recorder>(j_, "r", true)});
  CallResult r = unary_call(channel_, "/e2e.Icpt/Hang", "slow", 200ms);
  EXPECT_EQ(r.code, grpc::StatusCode::DEADLINE_EXCEEDED) << describe(r);
  wait_ended(1);
  auto e = j_.last_ended();
  EXPECT_TRUE(e.stats.code == StatusCode::DEADLINE_EXCEEDED || e.stats.code == StatusCode::CANCELLED)
      << uringrpc::status_code_name(e.stats.code);
  EXPECT_EQ(e.stats.messages_received, 1u);
  EXPECT_GE(e.stats.duration, 150ms);
  EXPECT_LT(e.stats.duration, 2s);
}

TEST_F(InterceptorE2e, AfterHookSeesAHandlerThatThrew) {
  start({std::make_shared<Recorder>(j_, "r", true)});
  CallResult r = unary_call(channel_, "/e2e.Icpt/Throw", "x");
  EXPECT_EQ(r.code, grpc::StatusCode::UNKNOWN) << describe(r);
  wait_ended(1);
  EXPECT_EQ(j_.last_ended().stats.code, StatusCode::UNKNOWN);
  EXPECT_NE(j_.last_ended().message.find("handler broke"), std::string::npos);
}

// A stop cancels the calls still running: their after-hooks run before stop() returns.
TEST_F(InterceptorE2e, AfterHookSeesACallEndedByTheServerStopping) {
  start({std::make_shared<Recorder>(j_, "r", true)});
  StreamingCall call(channel_, "/e2e.Icpt/Hang", 10s);
  ASSERT_TRUE(call.write("one"));
  ASSERT_TRUE(wait_until([&] { return reads_.load() == 1; }));
  server_->stop();
  EXPECT_EQ(j_.ended_count(), 1u);
  CallResult r = call.finish();
  EXPECT_EQ(r.code, grpc::StatusCode::UNAVAILABLE) << describe(r);
  ASSERT_EQ(j_.ended_count(), 1u);
  EXPECT_EQ(j_.last_ended().stats.code, StatusCode::UNAVAILABLE);
  EXPECT_EQ(j_.last_ended().stats.messages_received, 1u);
}

// Authorization by TLS client certificate: the before-hook reads ctx.peer_identity().
class AllowClientSan : public Interceptor {
 public:
  Task<void> before(ServerContext& ctx) override {
    const uringrpc::PeerIdentity* id = ctx.peer_identity();
    if (!id) ctx.abort(StatusCode::UNAUTHENTICATED, "no client certificate");
    if (!id->verified || std::find(id->dns_sans.begin(), id->dns_sans.end(),
                                   uringrpc::testing::kClientDnsSan) == id->dns_sans.end()) {
      ctx.abort(StatusCode::PERMISSION_DENIED, "client not allowed");
    }
    co_return;
  }
};

TEST(InterceptorPeerIdentity, BeforeHookAuthorizesByTheClientCertificate) {
  using uringrpc::testing::test_pki;
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  server.add_interceptor(std::make_shared<AllowClientSan>());
  std::atomic<int> runs{0};
  server.add_method("/e2e.Icpt/Echo", uringrpc::unary([&runs](Bytes req, ServerContext&) -> Task<Bytes> {
                      runs.fetch_add(1);
                      co_return req;
                    }));
  auto creds = uringrpc::TlsCredentials::from_pem(test_pki().server_chain_pem, test_pki().server_key_pem);
  creds.client_certificate = uringrpc::ClientCertificate::kRequest;
  creds.client_ca_pem = test_pki().ca_cert_pem;
  std::string secure = "127.0.0.1:" + std::to_string(server.add_secure_port("127.0.0.1:0", creds));
  std::string insecure = "127.0.0.1:" + std::to_string(server.add_insecure_port("127.0.0.1:0"));
  server.start();

  CallResult with_cert = unary_call(uringrpc::testing::make_mtls_channel(secure, test_pki().ca_cert_pem,
                                                                         test_pki().client_cert_pem,
                                                                         test_pki().client_key_pem, "localhost"),
                                    "/e2e.Icpt/Echo", "hi");
  EXPECT_TRUE(with_cert.ok()) << describe(with_cert);
  CallResult no_cert = unary_call(uringrpc::testing::make_tls_channel(secure, test_pki().ca_cert_pem, "localhost"),
                                  "/e2e.Icpt/Echo", "hi");
  EXPECT_EQ(no_cert.code, grpc::StatusCode::UNAUTHENTICATED) << describe(no_cert);
  CallResult plain = unary_call(make_channel(insecure), "/e2e.Icpt/Echo", "hi");
  EXPECT_EQ(plain.code, grpc::StatusCode::UNAUTHENTICATED) << describe(plain);
  EXPECT_EQ(runs.load(), 1);
  server.stop();
}

TEST(InterceptorRegistration, NullOrLateInterceptorsAreRefused) {
  uringrpc::Server server(uringrpc::ServerOptions{.shards = 1});
  EXPECT_THROW(server.add_interceptor(nullptr), std::invalid_argument);
  server.add_insecure_port("127.0.0.1:0");
  server.start();
  EXPECT_THROW(server.add_interceptor(std::make_shared<Nothing>()), uringrpc::UsageError);
  server.stop();
}

}  // namespace
