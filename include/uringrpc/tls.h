// TLS credentials for a secure listening port: the server's certificate chain and key, as PEM,
// and whether clients must present certificates of their own (mutual TLS). Applications build
// one and pass it when adding a secure port; the transport layer turns it into one SSL_CTX
// that every shard shares.
#pragma once

#include <string>

namespace uringrpc {

// Whether the server asks TLS clients for a certificate (mutual TLS). A certificate a client
// does send must chain to TlsCredentials::client_ca_pem in both asking modes, or the handshake
// fails: an unverifiable certificate is never accepted as "no certificate".
enum class ClientCertificate {
  kNone,     // never asked for: the server authenticates, the client stays anonymous
  kRequest,  // asked for; a client without one is still served (no PeerIdentity)
  kRequire,  // the handshake fails unless the client presents a certificate that verifies
};

struct TlsCredentials {
  std::string certificate_chain_pem;  // leaf first, then intermediates (a root is harmless)
  std::string private_key_pem;        // unencrypted: a server cannot stop to ask for a passphrase
  // Mutual TLS. The defaults keep server authentication only. kRequest and kRequire need
  // client_ca_pem: one or more PEM certificates that client certificates must chain to (their
  // names are also sent to clients as the acceptable issuers). Adding the port throws
  // std::invalid_argument when either mode lacks usable roots, and when client_ca_pem is set
  // with kNone, which would otherwise silently accept every client.
  ClientCertificate client_certificate = ClientCertificate::kNone;
  std::string client_ca_pem;

  static TlsCredentials from_pem(std::string cert_chain_pem, std::string key_pem);
  // Reads both files now, so a bad path fails at configuration time rather than at start().
  // Throws std::invalid_argument naming the file that cannot be read.
  static TlsCredentials from_files(const std::string& cert_chain_path,
                                   const std::string& key_path);
  // Sets client_ca_pem from a file, read now; throws std::invalid_argument naming the file
  // when it cannot be read. The mode is still set separately (client_certificate).
  void load_client_ca_file(const std::string& path);
};

}  // namespace uringrpc
