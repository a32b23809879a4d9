// How the C++ servers of the benchmark (bench-server and the gRPC C++ anchor) wait to be
// stopped: SIGINT, SIGTERM, or EOF on a stdin that is a pipe or socket, all three as a byte
// on one self-pipe, so that a single blocking read() in one thread waits for any of them.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace bench {

// First thing in main, before any thread exists: threads inherit the mask, so the stop
// signals reach only the thread that calls wait_for_stop().
inline void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

namespace detail {
inline int stop_pipe_write_end = -1;
inline void on_stop_signal(int) {
  char c = 's';
  if (write(stop_pipe_write_end, &c, 1) < 0) {
  }
}
}  // namespace detail

// Returns once a stop is asked for. A runner that holds our stdin as a pipe stops us by
// closing it (or by dying); only a pipe or socket counts, as a stdin of /dev/null would read
// EOF at once.
inline void wait_for_stop() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    std::exit(1);
  }
  detail::stop_pipe_write_end = fds[1];
  struct stat st {};
  if (fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    std::thread([] {
      char buf[256];
      while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
      }
      detail::on_stop_signal(0);
    }).detach();
  }
  struct sigaction action {};
  action.sa_handler = detail::on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  char c;
  while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
  }
}

}  // namespace bench
