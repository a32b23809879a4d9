// The non-template half of uringrpc/wake.h: ShardRef's posts through the shard's link, and
// the waiter lists of Event, Promise and Channel, which live on their shard. Called by those
// primitives from handlers (on the shard) and from any thread that completes them.
#include "uringrpc/wake.h"

#include "loop/shard.h"
#include "uringrpc/errors.h"

namespace uringrpc {

bool ShardRef::post(std::function<void()> fn) const {
  if (!link_) return false;
  {
    std::lock_guard<std::mutex> lock(link_->mu);
    // Under the link's lock: the shard cannot finish its loop and go away meanwhile.
    if (link_->shard) {
      link_->shard->post(std::move(fn));
      return true;
    }
  }
  return false;  // fn is destroyed by our caller's copy going out of scope, unlocked
}

bool ShardRef::is_current() const noexcept {
  loop::Shard* here = loop::Shard::current();
  return link_ && here && here->link().get() == link_.get();
}

unsigned ShardRef::index() const {
  if (!link_) throw UsageError("uringrpc::ShardRef refers to no shard");
  return link_->index;
}

ShardRef this_shard() { return detail::bind_here("uringrpc::this_shard()"); }

namespace detail {

ShardRef bind_here(const char* what) {
  loop::Shard* shard = loop::Shard::current();
  if (!shard) throw UsageError(std::string(what) + " must be called in a handler, on a shard (or be given a ShardRef)");
  return ShardRef(shard->link());
}

void throw_usage(const char* what) { throw UsageError(what); }

void WakeState::request_wake() {
  if (shard_.is_current()) {
    on_wake();
    return;
  }
  // The closure holds the state: it runs (or is dropped) after every handle may be gone.
  shard_.post([self = shared_from_this()] { self->on_wake(); });
}

void WakeState::check_owner(const char* what) const {
  if (!shard_.is_current()) throw UsageError(what);
}

void WakeState::add(WaitNode& node, std::coroutine_handle<> h) noexcept {
  node.handle = h;
  node.state = WaitNode::State::kWaiting;
  node.prev = nullptr;
  node.next = head_;
  if (head_) head_->prev = &node;
  head_ = &node;
}

void WakeState::remove(WaitNode& node) noexcept {
  if (node.state == WaitNode::State::kWaiting) {
    if (node.prev) node.prev->next = node.next;
    else head_ = node.next;
    if (node.next) node.next->prev = node.prev;
  } else if (node.state == WaitNode::State::kQueued) {
    // Woken but not resumed, and its frame is being destroyed: drop the resumption.
    if (loop::Shard* shard = loop::Shard::current()) shard->unschedule(node.handle);
  }
  node.prev = node.next = nullptr;
  node.state = WaitNode::State::kIdle;
}

void WakeState::wake_all() noexcept {
  loop::Shard* shard = loop::Shard::current();
  WaitNode* node = head_;
  head_ = nullptr;
  while (node) {
    WaitNode* next = node->next;
    node->prev = node->next = nullptr;
    node->state = WaitNode::State::kQueued;
    shard->schedule(node->handle);
    node = next;
  }
}

}  // namespace detail
}  // namespace uringrpc
