// gRPC status codes and the Status a call ends with.
#pragma once

#include <string>
#include <string_view>

namespace uringrpc {

// Names and numbers as in gRPC's status.proto; clients everywhere know these.
enum class StatusCode : int {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
};

// "OK", "CANCELLED", ...; "UNKNOWN_CODE" outside the range.
std::string_view status_code_name(StatusCode code) noexcept;

// The status a call ends with. `details` is optional rich error detail: a serialized
// google.rpc.Status (code, message, and google.protobuf.Any details), which the client
// reads back (gRPC C++: grpc::Status::error_details()). It is sent as the binary trailer
// grpc-status-details-bin with a non-OK code, never with OK. make_status() in
// uringrpc/protobuf.h builds one from a message. A status whose trailers would not fit the
// client's advertised header list size (SETTINGS_MAX_HEADER_LIST_SIZE: gRPC clients say
// 8 KiB) or 64 KiB reaches the client as INTERNAL instead (man uringrpc(7), "Rich errors").
struct Status {
  StatusCode code = StatusCode::OK;
  std::string message;
  std::string details{};

  bool ok() const noexcept { return code == StatusCode::OK; }
};

}  // namespace uringrpc
