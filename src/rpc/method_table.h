// MethodTable: full method path → handler. Filled before start(), then read-only and
// shared by every shard without locks.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "uringrpc/handler.h"

namespace uringrpc::rpc {

class MethodTable {
 public:
  struct Entry {
    std::string path;
    MethodHandler handler;
  };
  // Throws std::invalid_argument for a path not of the form "/service/method" or a duplicate.
  void add(std::string path, MethodHandler handler);
  const Entry* find(std::string_view path) const noexcept;
  // The handler for paths not added (Server::set_fallback_handler); its entry's path is
  // empty: the call keeps the path it was called with. Throws std::invalid_argument for an
  // empty handler or a second fallback.
  void set_fallback(MethodHandler handler);
  const Entry* fallback() const noexcept { return fallback_.handler.run ? &fallback_ : nullptr; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  Entry fallback_;
};

}  // namespace uringrpc::rpc
