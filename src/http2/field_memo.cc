#include "http2/field_memo.h"

namespace uringrpc::http2 {

constinit thread_local FieldMemo FieldMemo::memo_{};

void FieldMemo::remember(const void* owner, nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                         std::string_view name_bytes, std::string_view value_bytes, FieldName kind,
                         FieldFacts facts) noexcept {
  Entry* set = &entries_[set_of(name, value)];
  nghttp2_rcbuf_incref(name);
  nghttp2_rcbuf_incref(value);
  if (set[1].name) {
    // Its owner is alive (it forgets its fields before its nghttp2 session goes).
    nghttp2_rcbuf_decref(set[1].name);
    nghttp2_rcbuf_decref(set[1].value);
  }
  set[1] = set[0];  // the older one goes, the newer one ages
  set[0] = {owner, name, value, name_bytes, value_bytes, kind, facts};
}

void FieldMemo::forget(const void* owner) noexcept {
  for (Entry& e : entries_) {
    if (e.owner != owner || !e.name) continue;
    nghttp2_rcbuf_decref(e.name);
    nghttp2_rcbuf_decref(e.value);
    e = {};
  }
}

}  // namespace uringrpc::http2
