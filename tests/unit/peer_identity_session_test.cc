// http2::Session's view of the TLS client identity: read through its transport while that
// lives, and still the same object after the transport is gone, since calls on a closed
// connection may still be running and asking through ServerContext::peer_identity().
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "http2/session.h"
#include "server/layer_options.h"

namespace uringrpc::http2 {
namespace {

class IdentityTransport final : public transport::Transport {
 public:
  void request_flush() override {}
  void close_after_flush() override {}
  void abort() override {}
  const std::string& peer() const override { return peer_; }
  std::shared_ptr<const PeerIdentity> peer_identity() const override { return identity; }
  std::shared_ptr<const PeerIdentity> identity;

 private:
  std::string peer_ = "test:identity";
};

struct NullListener final : StreamListener {
  void on_request(Stream&, bool) noexcept override {}
  void on_request_data(Stream&, const Bytes&) noexcept override {}
  void on_request_end(Stream&) noexcept override {}
  void on_stream_closed(Stream&, uint32_t) noexcept override {}
  void on_session_closed() noexcept override {}
};

TEST(MtlsHttp2Session, IdentityOutlivesTheTransportAtTheSameAddress) {
  NullListener listener;
  const PeerIdentity* seen = nullptr;
  SessionSettings settings = server::session_settings(ServerOptions{});
  std::unique_ptr<Session> session;
  {
    auto transport = std::make_unique<IdentityTransport>();
    auto id = std::make_shared<PeerIdentity>();
    id->subject = "CN=someone";
    id->verified = true;
    transport->identity = id;
    session = std::make_unique<Session>(*transport, settings, listener);
    seen = session->peer_identity();
    ASSERT_EQ(seen, id.get());
    session->on_closed();
    transport.reset();  // the connection is freed; calls on it may still run
  }
  EXPECT_EQ(session->peer_identity(), seen);
  EXPECT_EQ(session->peer_identity()->subject, "CN=someone");
}

TEST(MtlsHttp2Session, NoIdentityOnATransportWithoutTls) {
  NullListener listener;
  struct Plain final : transport::Transport {
    void request_flush() override {}
    void close_after_flush() override {}
    void abort() override {}
    const std::string& peer() const override { return name; }
    std::string name = "test:plain";
  } transport;
  SessionSettings settings = server::session_settings(ServerOptions{});
  Session session(transport, settings, listener);
  EXPECT_EQ(session.peer_identity(), nullptr);
  session.on_closed();
  EXPECT_EQ(session.peer_identity(), nullptr);
}

}  // namespace
}  // namespace uringrpc::http2
