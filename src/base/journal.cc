// JOURNAL_STREAM against stderr (journal.h). Read once: the logger asks on every line.
#include "base/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

namespace uringrpc::base {

bool journal_stream_matches(const char* journal_stream, int fd) {
  if (!journal_stream) return false;
  uintmax_t dev = 0, ino = 0;
  int consumed = 0;
  // "%n" after the last field: the whole value must be "<dev>:<ino>", nothing more.
  if (std::sscanf(journal_stream, "%ju:%ju%n", &dev, &ino, &consumed) != 2 || journal_stream[consumed] != '\0') {
    return false;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<uintmax_t>(st.st_dev) == dev && static_cast<uintmax_t>(st.st_ino) == ino;
}

bool stderr_is_journal() {
  static const bool is_journal = journal_stream_matches(std::getenv("JOURNAL_STREAM"), STDERR_FILENO);
  return is_journal;
}

}  // namespace uringrpc::base
