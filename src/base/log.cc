// Stderr logger: formats a whole line first so lines from shard threads never interleave.
// When stderr is the journal, each line starts with its syslog priority ("<4>" for warn).
#include "base/log.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "base/journal.h"

namespace uringrpc::base {
namespace {

LogLevel level_from_env() {
  const char* v = std::getenv("URINGRPC_LOG");
  if (!v) return LogLevel::kWarn;
  if (!std::strcmp(v, "debug")) return LogLevel::kDebug;
  if (!std::strcmp(v, "info")) return LogLevel::kInfo;
  if (!std::strcmp(v, "error")) return LogLevel::kError;
  return LogLevel::kWarn;
}

const LogLevel kThreshold = level_from_env();
const char* const kNames[] = {"debug", "info", "warn", "error"};
// syslog priorities (sd-daemon.h's SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR) by level.
const char* const kJournalPrefixes[] = {"<7>", "<6>", "<4>", "<3>"};

}  // namespace

bool log_enabled(LogLevel level) { return level >= kThreshold; }

void log(LogLevel level, const char* fmt, ...) {
  char line[1024];
  char thread[16] = "?";
  pthread_getname_np(pthread_self(), thread, sizeof thread);
  const int l = static_cast<int>(level);
  int n = std::snprintf(line, sizeof line, "%suringrpc %s [%s] ", stderr_is_journal() ? kJournalPrefixes[l] : "",
                        kNames[l], thread);
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  size_t len = n + (m < 0 ? 0 : std::min<size_t>(m, sizeof line - n - 2));
  line[len++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line, len);
  (void)ignored;
}

}  // namespace uringrpc::base
