// Formats and writes access log lines. A line is built in one string and written with one
// write(2) (a file opened O_APPEND, or a pipe for lines under PIPE_BUF, keeps lines whole
// when several shards write at once), or handed to the user's sink.
#include "server/access_log.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace uringrpc::server {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0 when
// there is none (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

void append_time(std::string& out, std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(us / 1'000'000);
  long frac = static_cast<long>(us % 1'000'000);
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];  // room for any int year, as the compiler sees it
  snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  out += buf;
}

void append_field(std::string& out, const char* name, uint64_t v) {
  out += ",\"";
  out += name;
  out += "\":";
  out += std::to_string(v);
}

void append_field(std::string& out, const char* name, std::string_view v) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, v);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

std::string access_log_line(std::string_view peer, std::string_view method,
                            std::optional<std::string_view> user_agent, const CallStats& stats) {
  std::string out;
  out.reserve(256 + method.size() + peer.size() + (user_agent ? user_agent->size() : 0));
  out += "{\"time\":";
  append_time(out, stats.start);
  append_field(out, "peer", peer);
  append_field(out, "method", method);
  append_field(out, "code", status_code_name(stats.code));
  append_field(out, "grpc_code", static_cast<uint64_t>(stats.code));
  append_field(out, "duration_us",
               static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(stats.duration).count()));
  append_field(out, "bytes_in", stats.bytes_received);
  append_field(out, "bytes_out", stats.bytes_sent);
  append_field(out, "messages_in", stats.messages_received);
  append_field(out, "messages_out", stats.messages_sent);
  if (user_agent) {
    append_field(out, "user_agent", *user_agent);
  } else {
    out += ",\"user_agent\":null";
  }
  out += '}';
  return out;
}

AccessLog::AccessLog(const AccessLogOptions& options) : fd_(options.fd), sink_(options.sink) {}

void AccessLog::after(const ServerContext& ctx, const CallStats& stats) {
  std::string line = access_log_line(ctx.peer(), ctx.method(), ctx.client_metadata_value("user-agent"), stats);
  if (sink_) {
    sink_(line);
    return;
  }
  line += '\n';
  // A line that cannot be written (a full pipe, a closed fd) is dropped: the call is over,
  // and a log must not stall or fail the server.
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
}

}  // namespace uringrpc::server
