// OffloadPool: a few threads for blocking work handlers hand off with
// co_await uringrpc::offload(fn). Results travel back to the awaiting shard by post().
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "uringrpc/async.h"

namespace uringrpc::loop {

class OffloadPool {
 public:
  explicit OffloadPool(unsigned threads);
  // Runs what is queued, then joins.
  ~OffloadPool();
  void submit(std::shared_ptr<::uringrpc::detail::OffloadOp> op);

 private:
  void worker();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<::uringrpc::detail::OffloadOp>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace uringrpc::loop
