// http2::Session's view of the TLS client identity: read through its transport while that
// lives, and still the same object after the transport is gone, since calls on a closed
// connection may still be running and asking through ServerContext::peer_identity().
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../common/memory_transport.h"
#include "http2/session.h"
#include "server/layer_options.h"

namespace uringrpc::http2 {
namespace {

using testing::MemoryTransport;

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
    auto transport = std::make_unique<MemoryTransport>("test:identity");
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
  MemoryTransport transport("test:plain");
  SessionSettings settings = server::session_settings(ServerOptions{});
  Session session(transport, settings, listener);
  EXPECT_EQ(session.peer_identity(), nullptr);
  session.on_closed();
  EXPECT_EQ(session.peer_identity(), nullptr);
}

}  // namespace
}  // namespace uringrpc::http2
