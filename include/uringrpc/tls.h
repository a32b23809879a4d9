// TLS credentials for a secure listening port: the server's certificate chain and key, as PEM.
// Applications build one and pass it when adding a secure port; the transport layer turns it
// into one SSL_CTX that every shard shares.
#pragma once

#include <string>

namespace uringrpc {

struct TlsCredentials {
  std::string certificate_chain_pem;  // leaf first, then intermediates (a root is harmless)
  std::string private_key_pem;        // unencrypted: a server cannot stop to ask for a passphrase
  // Mutual TLS (client CA roots, verification mode) will be added here as further members
  // with defaults that keep today's behaviour: server authentication only.

  static TlsCredentials from_pem(std::string cert_chain_pem, std::string key_pem);
  // Reads both files now, so a bad path fails at configuration time rather than at start().
  // Throws std::invalid_argument naming the file that cannot be read.
  static TlsCredentials from_files(const std::string& cert_chain_path,
                                   const std::string& key_path);
};

}  // namespace uringrpc
