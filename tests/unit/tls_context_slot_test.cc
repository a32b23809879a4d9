// TlsContextSlot and TlsContextReader (what a reload swaps, what each shard's acceptor reads),
// and TlsContext's SNI name table, without sockets: readers see a replacement on their next
// look and keep nothing alive that a replacement dropped; readers on other threads racing
// replacements always get a whole context (run it under `make tsan` to check the race).
#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "../common/test_certs.h"
#include "transport/tls_context.h"
#include "transport/tls_context_slot.h"
#include "uringrpc/tls.h"

namespace uringrpc::transport {
namespace {

std::shared_ptr<TlsContext> make_context() {
  const auto& pki = testing::test_pki();
  return TlsContext::create(TlsCredentials::from_pem(pki.server_chain_pem, pki.server_key_pem));
}

TEST(TlsContextSlot, ReaderSeesTheReplacementOnItsNextLookAndReleasesTheOldContext) {
  auto first = make_context();
  std::weak_ptr<TlsContext> first_weak = first;
  auto slot = std::make_shared<TlsContextSlot>(std::move(first));
  TlsContextReader reader(slot);
  ASSERT_TRUE(reader);
  SSL_CTX* first_native = reader.current()->native();
  EXPECT_EQ(reader.current()->native(), first_native) << "no replacement: the same context";

  auto second = make_context();
  SSL_CTX* second_native = second->native();
  slot->replace(std::move(second));
  EXPECT_FALSE(first_weak.expired()) << "the reader's cached copy still holds the first context";
  EXPECT_EQ(reader.current()->native(), second_native);
  EXPECT_TRUE(first_weak.expired()) << "once every reader moved on, the old context is freed";
}

TEST(TlsContextSlot, InsecureReaderIsEmpty) {
  TlsContextReader reader;
  EXPECT_FALSE(reader);
  EXPECT_EQ(reader.current(), nullptr);
}

TEST(TlsContextSlot, ReadersOnOtherThreadsRacingReplacementsAlwaysGetAWholeContext) {
  std::vector<std::shared_ptr<TlsContext>> contexts;
  for (int i = 0; i < 4; ++i) contexts.push_back(make_context());
  auto slot = std::make_shared<TlsContextSlot>(contexts[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      TlsContextReader reader(slot);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto& c = reader.current();
        bool known = false;
        for (const auto& k : contexts) known = known || c.get() == k.get();
        if (!known || SSL_CTX_get_cert_store(c->native()) == nullptr) bad.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) slot->replace(contexts[static_cast<size_t>(i) % contexts.size()]);
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(TlsContextSni, ExactNamesWinOverWildcardsAndCaseDoesNotMatter) {
  const auto& pki = testing::test_pki();
  TlsCredentials creds = TlsCredentials::from_pem(pki.server_chain_pem, pki.server_key_pem);
  creds.sni_certificates.push_back({"*.Example.test", pki.server_chain_pem, pki.server_key_pem, "", ""});
  creds.sni_certificates.push_back({"api.example.test", pki.server_chain_pem, pki.server_key_pem, "", ""});
  auto ctx = TlsContext::create(creds);
  SSL_CTX* wildcard = ctx->for_server_name("www.example.test");
  SSL_CTX* exact = ctx->for_server_name("api.example.test");
  ASSERT_NE(wildcard, nullptr);
  ASSERT_NE(exact, nullptr);
  EXPECT_NE(wildcard, exact) << "the exact entry, though the wildcard came first";
  EXPECT_NE(wildcard, ctx->native());
  EXPECT_EQ(ctx->for_server_name("API.EXAMPLE.TEST"), exact);
  EXPECT_EQ(ctx->for_server_name("WWW.example.TEST"), wildcard);
  EXPECT_EQ(ctx->for_server_name("example.test"), nullptr);
  EXPECT_EQ(ctx->for_server_name("a.b.example.test"), nullptr);
  EXPECT_EQ(ctx->for_server_name(".example.test"), nullptr);
  EXPECT_EQ(ctx->for_server_name(""), nullptr);
  EXPECT_EQ(ctx->for_server_name(std::string(300, 'a')), nullptr);
}

TEST(TlsCredentialsReread, KeepsPemWithoutFilesAndNamesAFileThatIsGone) {
  auto files = testing::write_test_pki_files();
  TlsCredentials creds = TlsCredentials::from_files(files.cert_path, files.key_path);
  EXPECT_EQ(creds.certificate_chain_file, files.cert_path);
  EXPECT_EQ(creds.private_key_file, files.key_path);
  creds.sni_certificates.push_back({"pem.only", "chain text", "key text", "", ""});
  TlsCredentials again = creds.reread_files();
  EXPECT_EQ(again.certificate_chain_pem, creds.certificate_chain_pem);
  EXPECT_EQ(again.sni_certificates.at(0).certificate_chain_pem, "chain text");
  std::filesystem::remove_all(files.dir);
  try {
    (void)creds.reread_files();
    ADD_FAILURE() << "reread_files() of removed files succeeded";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read TLS certificate chain file '" + files.cert_path + "'"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace uringrpc::transport
