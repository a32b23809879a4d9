// Exceptions thrown for configuration and API misuse. The I/O path never throws.
#pragma once

#include <stdexcept>
#include <string>

namespace uringrpc {

// A listening address could not be bound: in use, not permitted, not resolvable.
// what() names the address and the reason.
class BindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The API was called in a state where the call makes no sense (add_port after start, ...).
class UsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace uringrpc
