// A throwaway PKI for tests: a CA, a localhost server certificate and client certificates for
// mutual TLS, generated in-process with OpenSSL's C API. Used by TLS unit tests and by
// end-to-end tests that point the real gRPC client at a secure port (trust ca_cert_pem,
// target "localhost" or 127.0.0.1 / ::1; present client_cert_pem to a port requiring one).
#pragma once

#include <string>

namespace uringrpc::testing {

struct TestPki {
  std::string ca_cert_pem;       // self-signed CA
  std::string server_cert_pem;   // signed by the CA, SANs: DNS:localhost, DNS:*.test.google.fr,
                                 // IP:127.0.0.1, IP:::1
  std::string server_key_pem;    // PKCS#8, unencrypted
  std::string server_chain_pem;  // server cert followed by CA cert

  // Mutual TLS: a client certificate signed by the same CA (extended key usage clientAuth)...
  std::string client_cert_pem;  // subject kClientSubject, SANs kClientDnsSan, kClientUriSan,
  std::string client_key_pem;   // kClientIpv4San, kClientIpv6San
  // ...and one from a second, unrelated CA, which a server trusting ca_cert_pem must refuse.
  std::string other_ca_cert_pem;
  std::string other_client_cert_pem;  // same subject and SANs as client_cert_pem
  std::string other_client_key_pem;
};

// What the client certificates say, as PeerIdentity spells it.
inline constexpr const char* kClientSubject = "CN=uringrpc test client,O=uringrpc tests";
inline constexpr const char* kClientDnsSan = "client.uringrpc.test";
inline constexpr const char* kClientUriSan = "spiffe://uringrpc.test/client";
inline constexpr const char* kClientIpv4San = "192.0.2.7";
inline constexpr const char* kClientIpv6San = "2001:db8::7";

// Generated once per process (EC P-256 keys, so it takes about a millisecond); thread-safe.
// Throws std::runtime_error if OpenSSL fails.
const TestPki& test_pki();

// Writes the PEMs into a fresh directory under $TMPDIR (or /tmp) and returns the paths.
// The caller removes `dir` when done (std::filesystem::remove_all).
struct TestPkiFiles {
  std::string dir, ca_path, cert_path, key_path;  // cert_path holds the chain
};
TestPkiFiles write_test_pki_files();

// A fresh CA of its own and a server certificate it signed, with the SANs of
// TestPki::server_cert_pem plus `extra_sans` ("DNS:a.example.test,DNS:*.b.example.test");
// the certificate's CN is `name`, its CA's "<name> CA". For tests that need certificates a
// client can tell apart (reloads, SNI). Generated anew on each call; throws std::runtime_error.
struct ServerCert {
  std::string ca_cert_pem, cert_pem, key_pem;
  std::string chain_pem;  // cert_pem followed by ca_cert_pem
};
ServerCert make_server_cert(const std::string& name, const std::string& extra_sans = "");

// A fresh directory under $TMPDIR (or /tmp); the caller removes it.
std::string make_temp_dir();

}  // namespace uringrpc::testing
