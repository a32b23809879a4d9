// What systemd handed this process, for applications that decide how to listen and log:
// the sockets of socket activation and whether stderr goes to the journal. The Server
// itself uses them through ServerOptions::systemd and add_listen_fds_from_systemd().
#pragma once

#include <string>
#include <vector>

namespace uringrpc::systemd {

// One socket passed through LISTEN_FDS, with its LISTEN_FDNAMES name ("unknown" when
// systemd gave none).
struct PassedSocket {
  int fd;
  std::string name;
};

// The sockets passed to this process (LISTEN_PID is ours); empty outside socket
// activation. The environment is left as it is, so every call answers the same.
std::vector<PassedSocket> passed_sockets();

// Whether stderr is connected to the journal (JOURNAL_STREAM names stderr's device and
// inode). uringrpc's log lines then start with a "<N>" syslog priority.
bool stderr_is_journal();

}  // namespace uringrpc::systemd
