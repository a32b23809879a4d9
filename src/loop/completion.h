// Completion: the object an io_uring request belongs to. Its address is the SQE's
// user_data, and it must outlive the request's last CQE (STYLE.md habit 1).
#pragma once

#include <cstdint>

namespace uringrpc::loop {

class Completion {
 public:
  // res is the CQE result (negative errno on failure); flags are the CQE flags
  // (IORING_CQE_F_MORE while a multishot request stays armed, IORING_CQE_F_BUFFER, ...).
  virtual void on_complete(int res, uint32_t flags) noexcept = 0;

 protected:
  ~Completion() = default;
};

}  // namespace uringrpc::loop
