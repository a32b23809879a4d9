// The public face of what systemd passed (uringrpc/systemd.h): socket activation's
// descriptors through sd_listen_fds_with_names(3), and the journal check of base/.
#include <fcntl.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>

#include "base/journal.h"
#include "uringrpc/systemd.h"

namespace uringrpc::systemd {

std::vector<PassedSocket> passed_sockets() {
  char** names = nullptr;
  // unset_environment = 0: several servers (or a second call) may look at the same sockets.
  int n = sd_listen_fds_with_names(0, &names);
  std::vector<PassedSocket> out;
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    // Passed without close-on-exec; the process's children have no use for them.
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    out.push_back({fd, names && names[i] ? names[i] : "unknown"});
  }
  if (names) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return out;
}

bool stderr_is_journal() { return base::stderr_is_journal(); }

}  // namespace uringrpc::systemd
