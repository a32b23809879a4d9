// MethodTable: full method path → handler. Filled before start(), then read-only and
// shared by every shard without locks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "uringrpc/handler.h"

namespace uringrpc::rpc {

class MethodTable {
 public:
  struct Entry {
    std::string path;
    MethodHandler handler;
    // Index of the method's metrics counters (rpc/call_metrics.h): 1, 2, ... in the order
    // methods were added; kUnknownSlot for the fallback, the one slot of every path not added.
    size_t slot = kUnknownSlot;
  };
  static constexpr size_t kUnknownSlot = 0;
  MethodTable() = default;
  MethodTable(const MethodTable&) = delete;  // by_slot_ points into entries_
  MethodTable& operator=(const MethodTable&) = delete;
  // Throws std::invalid_argument for a path not of the form "/service/method" or a duplicate.
  void add(std::string path, MethodHandler handler);
  const Entry* find(std::string_view path) const noexcept;
  // The same, checking first the entry of `hint` (a slot, 0 for none) and leaving the
  // answer's slot there: a connection's client usually calls one method again and again,
  // and comparing its path costs a third of hashing it.
  const Entry* find(std::string_view path, uint32_t& hint) const noexcept {
    if (hint != kUnknownSlot && hint <= by_slot_.size()) {
      const Entry* e = by_slot_[hint - 1];
      if (e->path == path) return e;
    }
    const Entry* e = find(path);
    if (e) hint = static_cast<uint32_t>(e->slot);
    return e;
  }
  // The handler for paths not added (Server::set_fallback_handler); its entry's path is
  // empty: the call keeps the path it was called with. Throws std::invalid_argument for an
  // empty handler or a second fallback.
  void set_fallback(MethodHandler handler);
  const Entry* fallback() const noexcept { return fallback_.handler.run ? &fallback_ : nullptr; }
  // Slots in use: the methods added plus the unknown slot.
  size_t slot_count() const noexcept { return entries_.size() + 1; }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [path, entry] : entries_) f(entry);
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  std::vector<const Entry*> by_slot_;  // slot 1, 2, ... (map nodes do not move)
  Entry fallback_;
};

}  // namespace uringrpc::rpc
