// MethodTable: lookups by path, and the per-connection hint that skips the hash for a
// path asked again (ConnectionCalls keeps one per connection).
#include "rpc/method_table.h"

#include <gtest/gtest.h>

namespace uringrpc::rpc {
namespace {

MethodHandler handler() {
  return {[](ServerContext&) -> Task<void> { co_return; }, RpcType::kUnary};
}

TEST(MethodTable, HintFindsTheSameEntryAsTheHashAndFollowsThePath) {
  MethodTable t;
  t.add("/pkg.Svc/A", handler());
  t.add("/pkg.Svc/B", handler());
  uint32_t hint = MethodTable::kUnknownSlot;
  const MethodTable::Entry* a = t.find("/pkg.Svc/A", hint);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, t.find("/pkg.Svc/A"));
  EXPECT_EQ(hint, a->slot);
  EXPECT_EQ(t.find("/pkg.Svc/A", hint), a);  // through the hint
  const MethodTable::Entry* b = t.find("/pkg.Svc/B", hint);  // hint names A: not taken
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->path, "/pkg.Svc/B");
  EXPECT_EQ(hint, b->slot);
}

TEST(MethodTable, UnknownPathKeepsTheHintAndAnOutOfRangeHintIsIgnored) {
  MethodTable t;
  t.add("/pkg.Svc/A", handler());
  uint32_t hint = MethodTable::kUnknownSlot;
  const MethodTable::Entry* a = t.find("/pkg.Svc/A", hint);
  EXPECT_EQ(t.find("/pkg.Svc/Nope", hint), nullptr);
  EXPECT_EQ(hint, a->slot);
  uint32_t stale = 7;
  EXPECT_EQ(t.find("/pkg.Svc/A", stale), a);
  EXPECT_EQ(stale, a->slot);
}

}  // namespace
}  // namespace uringrpc::rpc
