// Is stderr the journal? systemd sets JOURNAL_STREAM="<device>:<inode>" of the stream it
// connected to stdout/stderr; when stderr is still that stream, log.cc starts each line
// with a "<N>" syslog priority, which journald reads as the line's priority.
#pragma once

namespace uringrpc::base {

// Whether `journal_stream` (JOURNAL_STREAM's value, null when unset) names the device and
// inode of fd. A malformed value is no match.
bool journal_stream_matches(const char* journal_stream, int fd);

// journal_stream_matches(getenv("JOURNAL_STREAM"), 2), computed once.
bool stderr_is_journal();

}  // namespace uringrpc::base
