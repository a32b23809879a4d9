// Parses the interop server's flags (interop_flags.h): both spellings gRPC's interop
// runners use, "--flag value" and "--flag=value", and nothing else.
#include "interop_flags.h"

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <cstdlib>
#include <string_view>

namespace uringrpc::interop {

namespace {

bool parse_uint(const std::string& text, unsigned long max, unsigned long* out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  unsigned long v = std::strtoul(text.c_str(), nullptr, 10);
  if (errno != 0 || v > max) return false;
  *out = v;
  return true;
}

std::optional<bool> parse_bool(const std::string& text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

}  // namespace

std::optional<InteropFlags> parse_interop_flags(int argc, char** argv, std::string* error) {
  InteropFlags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name == "--health" && !has_value) {
      flags.health = true;
      continue;
    }
    if (name == "--use_tls") {
      // "--use_tls" alone means true; "--use_tls true" takes the next word only if it is a boolean.
      if (!has_value && i + 1 < argc && parse_bool(argv[i + 1])) value = argv[++i], has_value = true;
      auto b = has_value ? parse_bool(value) : std::optional<bool>(true);
      if (!b) {
        *error = "--use_tls takes true or false, not \"" + value + "\"";
        return std::nullopt;
      }
      flags.use_tls = *b;
      continue;
    }
    static constexpr std::string_view kValued[] = {"--port",          "--grace-ms",     "--grace_ms",
                                                   "--shards",        "--tls_cert_file", "--tls_key_file",
                                                   "--server_id",     "--max_connection_age_ms",
                                                   "--max_connection_age_grace_ms", "--metrics_listen"};
    if (std::find(std::begin(kValued), std::end(kValued), name) == std::end(kValued)) {
      *error = "unknown flag " + name;
      return std::nullopt;
    }
    if (!has_value) {
      if (i + 1 == argc) {
        *error = name + " needs a value";
        return std::nullopt;
      }
      value = argv[++i];
    }
    unsigned long n = 0;
    if (name == "--port") {
      if (!parse_uint(value, 65535, &n)) {
        *error = "--port takes a port number (0 to 65535), not \"" + value + "\"";
        return std::nullopt;
      }
      flags.port = static_cast<unsigned>(n);
    } else if (name == "--grace-ms" || name == "--grace_ms") {
      if (!parse_uint(value, 3'600'000, &n)) {
        *error = "--grace-ms takes milliseconds (0 to 3600000), not \"" + value + "\"";
        return std::nullopt;
      }
      flags.grace = std::chrono::milliseconds(n);
    } else if (name == "--shards") {
      if (!parse_uint(value, 1024, &n)) {
        *error = "--shards takes a count (0: one per CPU), not \"" + value + "\"";
        return std::nullopt;
      }
      flags.shards = static_cast<unsigned>(n);
    } else if (name == "--max_connection_age_ms" || name == "--max_connection_age_grace_ms") {
      // ServerOptions checks the range; this only has to be a number of milliseconds.
      if (!parse_uint(value, 3'600'000, &n)) {
        *error = name + " takes milliseconds (0 to 3600000), not \"" + value + "\"";
        return std::nullopt;
      }
      (name == "--max_connection_age_ms" ? flags.max_connection_age : flags.max_connection_age_grace) =
          std::chrono::milliseconds(n);
    } else if (name == "--server_id") {
      // Sent as a metadata value: printable ASCII only, so a bad name fails here, not per call.
      if (value.empty() || value.find_first_not_of(
                               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") !=
                               std::string::npos) {
        *error = "--server_id takes letters, digits and -_.: only, not \"" + value + "\"";
        return std::nullopt;
      }
      flags.server_id = value;
    } else if (name == "--metrics_listen") {
      flags.metrics_listen = value;  // ServerOptions and start() check the address
    } else if (name == "--tls_cert_file") {
      flags.tls_cert_file = value;
    } else {
      flags.tls_key_file = value;
    }
  }
  if (flags.tls_cert_file.empty() != flags.tls_key_file.empty()) {
    *error = "--tls_cert_file and --tls_key_file go together";
    return std::nullopt;
  }
  return flags;
}

}  // namespace uringrpc::interop
