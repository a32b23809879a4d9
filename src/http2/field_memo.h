// FieldMemo: request fields a shard's sessions were handed recently, remembered by the
// identity of nghttp2's buffers, with what the RFC 9113 checks found in their bytes.
//
// A field nghttp2 decodes from its HPACK table (an indexed field: the :method, :scheme,
// :authority, content-type, te and user-agent of a client's every request) comes in the
// same reference-counted buffers each time, and a buffer's bytes never change: its
// classification and the checks of its bytes (FieldFacts) are those of the first time, so
// only the rules that depend on the rest of the request run again. Each remembered field
// holds a reference on both its buffers, so an address here is never reused for other
// bytes while it is remembered. The buffers come from their session's allocator: a
// Session gives back what it owns here (forget()) before its nghttp2 session goes.
//
// One per shard thread (sessions live and die on their shard's thread), a fixed table of
// two-entry sets indexed by the buffers' addresses; a new field takes the older entry's place.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http2/request_rules.h"

namespace uringrpc::http2 {

class FieldMemo {
 public:
  struct Entry {
    const void* owner = nullptr;  // the session whose nghttp2 allocated the buffers
    nghttp2_rcbuf* name = nullptr;
    nghttp2_rcbuf* value = nullptr;
    std::string_view name_bytes;
    std::string_view value_bytes;
    FieldName kind = FieldName::kOther;
    FieldFacts facts;
  };

  static FieldMemo& of_this_thread() noexcept { return memo_; }

  // Whether a field of this kind is worth remembering: not those whose value is new in
  // every request (HPACK encoders never index :path or content-length; a grpc-timeout
  // counts down).
  static bool worth_remembering(FieldName kind) noexcept {
    return kind != FieldName::kPath && kind != FieldName::kContentLength && kind != FieldName::kGrpcTimeout;
  }

  const Entry* find(const nghttp2_rcbuf* name, const nghttp2_rcbuf* value) const noexcept {
    const Entry* set = &entries_[set_of(name, value)];
    if (set[0].name == name && set[0].value == value) return &set[0];
    if (set[1].name == name && set[1].value == value) return &set[1];
    return nullptr;
  }
  void remember(const void* owner, nghttp2_rcbuf* name, nghttp2_rcbuf* value, std::string_view name_bytes,
                std::string_view value_bytes, FieldName kind, FieldFacts facts) noexcept;
  // Drops every field whose buffers owner's nghttp2 allocated (references given back).
  void forget(const void* owner) noexcept;

 private:
  static constexpr unsigned kSlotBits = 8;  // 256 entries of 64 bytes: 16 KiB a shard
  static constexpr size_t kSlots = size_t{1} << kSlotBits;
  // Two entries per set (the first the newer), so that two fields whose addresses collide
  // do not evict each other in every request.
  static size_t set_of(const nghttp2_rcbuf* name, const nghttp2_rcbuf* value) noexcept {
    uint64_t k = reinterpret_cast<uintptr_t>(value) ^ (reinterpret_cast<uintptr_t>(name) << 7);
    return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> (64 - kSlotBits)) & ~size_t{1};
  }

  static constinit thread_local FieldMemo memo_;
  Entry entries_[kSlots] = {};
};

}  // namespace uringrpc::http2
