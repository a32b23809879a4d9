// Status code names for logs and error messages.
#include "uringrpc/status.h"

namespace uringrpc {

std::string_view status_code_name(StatusCode code) noexcept {
  static constexpr std::string_view kNames[] = {
      "OK",           "CANCELLED",           "UNKNOWN",        "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",      "ALREADY_EXISTS", "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",           "UNAVAILABLE",    "DATA_LOSS",
      "UNAUTHENTICATED"};
  auto i = static_cast<int>(code);
  if (i < 0 || i >= static_cast<int>(std::size(kNames))) return "UNKNOWN_CODE";
  return kNames[i];
}

}  // namespace uringrpc
