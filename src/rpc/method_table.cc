// Method path validation and lookup.
#include "rpc/method_table.h"

#include <stdexcept>

namespace uringrpc::rpc {

void MethodTable::add(std::string path, MethodHandler handler) {
  auto slash = path.find('/', 1);
  if (path.size() < 4 || path[0] != '/' || slash == std::string::npos || slash == 1 ||
      slash + 1 == path.size() || path.find('/', slash + 1) != std::string::npos) {
    throw std::invalid_argument("method path must look like \"/package.Service/Method\": \"" + path + "\"");
  }
  if (!handler.run) throw std::invalid_argument("empty handler for " + path);
  if (entries_.count(path)) throw std::invalid_argument("method registered twice: " + path);
  std::string key = path;
  auto it = entries_.emplace(std::move(key), Entry{std::move(path), std::move(handler), entries_.size() + 1}).first;
  by_slot_.push_back(&it->second);
}

void MethodTable::set_fallback(MethodHandler handler) {
  if (!handler.run) throw std::invalid_argument("empty fallback handler");
  if (fallback_.handler.run) throw std::invalid_argument("fallback handler set twice");
  fallback_.handler = std::move(handler);
}

const MethodTable::Entry* MethodTable::find(std::string_view path) const noexcept {
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace uringrpc::rpc
