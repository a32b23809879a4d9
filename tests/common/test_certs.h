// A throwaway PKI for tests: a CA and a localhost server certificate, generated in-process
// with OpenSSL's C API. Used by TLS unit tests and by end-to-end tests that point the real
// gRPC client at a secure port (trust ca_cert_pem, target "localhost" or 127.0.0.1 / ::1).
#pragma once

#include <string>

namespace uringrpc::testing {

struct TestPki {
  std::string ca_cert_pem;       // self-signed CA
  std::string server_cert_pem;   // signed by the CA, SANs: DNS:localhost, IP:127.0.0.1, IP:::1
  std::string server_key_pem;    // PKCS#8, unencrypted
  std::string server_chain_pem;  // server cert followed by CA cert
};

// Generated once per process (EC P-256 keys, so it takes about a millisecond); thread-safe.
// Throws std::runtime_error if OpenSSL fails.
const TestPki& test_pki();

// Writes the PEMs into a fresh directory under $TMPDIR (or /tmp) and returns the paths.
// The caller removes `dir` when done (std::filesystem::remove_all).
struct TestPkiFiles {
  std::string dir, ca_path, cert_path, key_path;  // cert_path holds the chain
};
TestPkiFiles write_test_pki_files();

}  // namespace uringrpc::testing
