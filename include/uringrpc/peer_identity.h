// PeerIdentity: who the client is, as its TLS client certificate says (mutual TLS).
// Built once per connection when the handshake completes; handlers read it through
// ServerContext::peer_identity(), and every call on the connection sees the same object.
#pragma once

#include <string>
#include <vector>

namespace uringrpc {

struct PeerIdentity {
  // The certificate's subject as an RFC 2253 string, most specific part first:
  // "CN=client,O=Example". Non-ASCII text stays UTF-8 rather than \XX escapes.
  std::string subject;
  // Subject alternative names by kind, in certificate order. IP addresses are printed the
  // usual way ("192.0.2.7", "2001:db8::7"). Other kinds (e-mail, directory names) are left
  // out; certificate_pem has everything.
  std::vector<std::string> dns_sans;
  std::vector<std::string> uri_sans;
  std::vector<std::string> ip_sans;
  // The client's leaf certificate, PEM, for checks beyond the fields above.
  std::string certificate_pem;
  // The certificate chained to TlsCredentials::client_ca_pem. The server never accepts a
  // certificate that fails verification (the handshake fails), so an identity a handler
  // sees is always verified; the flag makes that explicit at the point of use.
  bool verified = false;
};

}  // namespace uringrpc
