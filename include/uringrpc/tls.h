// TLS credentials for a secure listening port: the server's certificate chain and key, as PEM,
// more certificates chosen by the name the client asks for (SNI), and whether clients must
// present certificates of their own (mutual TLS). Applications build one and pass it when
// adding a secure port; the transport layer turns it into one TLS context that every shard
// shares, and Server::reload_tls() / set_tls_credentials() replace it while serving.
#pragma once

#include <string>
#include <vector>

namespace uringrpc {

// Whether the server asks TLS clients for a certificate (mutual TLS). A certificate a client
// does send must chain to TlsCredentials::client_ca_pem in both asking modes, or the handshake
// fails: an unverifiable certificate is never accepted as "no certificate".
enum class ClientCertificate {
  kNone,     // never asked for: the server authenticates, the client stays anonymous
  kRequest,  // asked for; a client without one is still served (no PeerIdentity)
  kRequire,  // the handshake fails unless the client presents a certificate that verifies
};

// One more certificate of a secure port, presented to clients whose TLS server name
// indication (SNI) is `server_name`; clients sending no name, or a name no entry matches,
// get the port's default certificate (TlsCredentials::certificate_chain_pem).
struct SniCertificate {
  // "api.example.com" (compared without regard to case), or "*.example.com": any one
  // label in front of example.com ("a.example.com", not "a.b.example.com" nor
  // "example.com"). An exact name wins over a wildcard.
  std::string server_name;
  std::string certificate_chain_pem;
  std::string private_key_pem;
  // Where the PEMs were read from (from_files); Server::reload_tls() reads them again.
  std::string certificate_chain_file;
  std::string private_key_file;

  // Reads both files now; throws std::invalid_argument naming a file that cannot be read.
  static SniCertificate from_files(std::string server_name, const std::string& cert_chain_path,
                                   const std::string& key_path);
};

struct TlsCredentials {
  std::string certificate_chain_pem;  // leaf first, then intermediates (a root is harmless)
  std::string private_key_pem;        // unencrypted: a server cannot stop to ask for a passphrase
  // Certificates for other server names (SNI); each is checked like the default one when the
  // port is added, and a name may appear once.
  std::vector<SniCertificate> sni_certificates;
  // Mutual TLS. The defaults keep server authentication only. kRequest and kRequire need
  // client_ca_pem: one or more PEM certificates that client certificates must chain to (their
  // names are also sent to clients as the acceptable issuers). Adding the port throws
  // std::invalid_argument when either mode lacks usable roots, and when client_ca_pem is set
  // with kNone, which would otherwise silently accept every client.
  ClientCertificate client_certificate = ClientCertificate::kNone;
  std::string client_ca_pem;

  // Where the PEMs above were read from, set by from_files() and load_client_ca_file();
  // empty for PEMs given directly. Server::reload_tls() reads the files named here again
  // (and those of sni_certificates) and keeps the PEMs of the others as they are.
  std::string certificate_chain_file;
  std::string private_key_file;
  std::string client_ca_file;

  static TlsCredentials from_pem(std::string cert_chain_pem, std::string key_pem);
  // Reads both files now, so a bad path fails at configuration time rather than at start().
  // Throws std::invalid_argument naming the file that cannot be read.
  static TlsCredentials from_files(const std::string& cert_chain_path,
                                   const std::string& key_path);
  // Sets client_ca_pem from a file, read now; throws std::invalid_argument naming the file
  // when it cannot be read. The mode is still set separately (client_certificate).
  void load_client_ca_file(const std::string& path);
  // A copy with every PEM that has a file read again from that file (what reload_tls()
  // does). Throws std::invalid_argument naming a file that cannot be read.
  TlsCredentials reread_files() const;
};

}  // namespace uringrpc
