// Offload pool threads: run what handlers hand to uringrpc::offload() (queued by
// loop/async.cc), then post each result back to the awaiting shard.
#include "loop/offload_pool.h"

#include <pthread.h>

#include <cstdio>

#include "loop/shard.h"

namespace uringrpc::loop {

OffloadPool::OffloadPool(unsigned threads) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] {
      char name[16];
      std::snprintf(name, sizeof name, "uringrpc-off/%u", i);
      pthread_setname_np(pthread_self(), name);
      worker();
    });
  }
}

OffloadPool::~OffloadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void OffloadPool::submit(std::shared_ptr<::uringrpc::detail::OffloadOp> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(op));
  }
  cv_.notify_one();
}

void OffloadPool::worker() {
  for (;;) {
    std::shared_ptr<::uringrpc::detail::OffloadOp> op;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    op->run_on_pool();
    auto* shard = static_cast<Shard*>(op->shard_);
    // The op (and the handler's function inside it) is released on the shard.
    shard->post([op = std::move(op)] {
      auto* s = static_cast<Shard*>(op->shard_);
      s->offload_finished();
      if (op->waiter_) s->schedule(op->waiter_);
    });
  }
}

}  // namespace uringrpc::loop
