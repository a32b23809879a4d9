// Building and installing a secure port's TLS contexts (tls_reload.h).
#include "server/tls_reload.h"

#include <utility>

namespace uringrpc::server {

PreparedTls prepare_tls(TlsCredentials credentials) {
  auto context = transport::TlsContext::create(credentials);
  return {std::move(context), std::move(credentials)};
}

Tls Tls::from(const TlsCredentials& credentials) {
  PreparedTls p = prepare_tls(credentials);
  return {std::make_shared<transport::TlsContextSlot>(std::move(p.context)), std::move(p.credentials)};
}

Tls Tls::copy() const {
  if (!slot) return {};
  uint64_t generation;
  return {std::make_shared<transport::TlsContextSlot>(slot->load(&generation)), credentials};
}

void Tls::install(PreparedTls fresh) {
  slot->replace(std::move(fresh.context));
  credentials = std::move(fresh.credentials);
}

}  // namespace uringrpc::server
