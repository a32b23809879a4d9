// Logging: one line per event on stderr, with a level. No per-RPC logging at the default
// level (warn). URINGRPC_LOG=debug|info|warn|error chooses the level.
#pragma once

#include <cstdarg>

namespace uringrpc::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool log_enabled(LogLevel level);
[[gnu::format(printf, 2, 3)]] void log(LogLevel level, const char* fmt, ...);

}  // namespace uringrpc::base

#define URINGRPC_LOG(level, ...)                                   \
  do {                                                             \
    if (::uringrpc::base::log_enabled(level)) ::uringrpc::base::log(level, __VA_ARGS__); \
  } while (0)
