// Metadata key/value rules and the handler-facing validation message. Errors are
// returned as text, never thrown: the call layer turns them into an INTERNAL status.
#include "rpc/metadata_validation.h"

#include <cstdint>
#include <cstdio>

namespace uringrpc::rpc {
namespace {

constexpr size_t kMaxQuotedKey = 64;

// Reserved besides the "grpc-" and ":" prefixes.
constexpr std::string_view kReservedKeys[] = {
    "content-type", "content-length", "te",      "host",
    "connection",   "keep-alive",     "proxy-connection", "transfer-encoding",
    "upgrade",
};

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool is_printable(char c) { return c >= 0x20 && c <= 0x7E; }

// Renders a byte for a message: 'E' when printable, 0x0A otherwise.
std::string describe_byte(char c) {
  char buf[8];
  if (is_printable(c) && c != '\'') {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(static_cast<uint8_t>(c)));
  }
  return buf;
}

// "key" with \" \\ and \xNN escapes, cut at kMaxQuotedKey bytes.
std::string quote_key(std::string_view key) {
  std::string out = "\"";
  const std::string_view shown = key.substr(0, kMaxQuotedKey);
  for (char c : shown) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (is_printable(c)) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(static_cast<uint8_t>(c)));
      out += buf;
    }
  }
  out += '"';
  if (shown.size() < key.size()) out += "...";
  return out;
}

std::string key_problem(std::string_view key) {
  if (key.empty()) return "empty key (keys must be non-empty, lowercase 0-9a-z-_.)";
  for (char c : key) {
    if (is_key_char(c)) continue;
    if (c == ':' && key.front() == ':') {
      return "key " + quote_key(key) + " is a pseudo-header, reserved for the transport";
    }
    const char* kind = (c >= 'A' && c <= 'Z') ? "uppercase character " : "illegal character ";
    return "key " + quote_key(key) + " has " + kind + describe_byte(c) +
           " (keys must be lowercase 0-9a-z-_.)";
  }
  return {};
}

}  // namespace

bool is_valid_metadata_key(std::string_view key) noexcept {
  if (key.empty()) return false;
  for (char c : key) {
    if (!is_key_char(c)) return false;
  }
  return true;
}

bool is_binary_metadata_key(std::string_view key) noexcept { return key.ends_with("-bin"); }

bool is_valid_metadata_value(std::string_view value) noexcept {
  for (char c : value) {
    if (!is_printable(c)) return false;
  }
  return true;
}

bool is_reserved_metadata_key(std::string_view key) noexcept {
  if (key.starts_with("grpc-") || key.starts_with(':')) return true;
  for (std::string_view reserved : kReservedKeys) {
    if (key == reserved) return true;
  }
  return false;
}

std::string validate_outgoing_metadata(const Metadata& md, std::string_view what) {
  for (const auto& [key, value] : md) {
    std::string problem = key_problem(key);
    if (problem.empty() && is_reserved_metadata_key(key)) {
      problem = "key " + quote_key(key) + " is reserved for the gRPC transport";
    }
    if (problem.empty() && !is_binary_metadata_key(key)) {
      for (size_t i = 0; i < value.size(); ++i) {
        if (is_printable(value[i])) continue;
        problem = "value of key " + quote_key(key) + " has non-printable byte " +
                  describe_byte(value[i]) + " at offset " + std::to_string(i) +
                  " (values must be printable ASCII; use a key ending in \"-bin\" for binary)";
        break;
      }
    }
    if (!problem.empty()) {
      std::string out = "invalid ";
      out += what;
      out += " metadata: ";
      out += problem;
      return out;
    }
  }
  return {};
}

}  // namespace uringrpc::rpc
