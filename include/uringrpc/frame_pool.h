// Where handler coroutine frames come from: the library's per-thread block pool, not
// malloc (frames come and go with every RPC). Declared apart from task.h so that the base
// layer, which defines these (src/base/small_pool.cc), needs nothing from the layers above.
#pragma once

#include <cstddef>

namespace uringrpc::detail {

void* frame_allocate(std::size_t n);
void frame_deallocate(void* p, std::size_t n) noexcept;

}  // namespace uringrpc::detail
