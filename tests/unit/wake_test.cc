// uringrpc/wake.h at its boundaries: ShardRef posts, Event, Promise/Future, Channel and
// from_callback, driven on a real loop::Shard by coroutines the test starts on it and
// completed from other threads; each resumption is checked to run on the shard's thread.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loop/shard.h"
#include "server/layer_options.h"
#include "uringrpc/errors.h"
#include "uringrpc/server.h"
#include "uringrpc/wake.h"

namespace {

using namespace std::chrono_literals;
using uringrpc::Channel;
using uringrpc::Completion;
using uringrpc::Event;
using uringrpc::Future;
using uringrpc::Promise;
namespace loop = uringrpc::loop;

// An eager coroutine that stays suspended at its end until the test destroys it (on the
// shard): destroying it while it waits is what a cancelled RPC does to its handler.
struct Probe {
  struct promise_type {
    Probe get_return_object() { return Probe{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

// What a probe saw, written on the shard and read by the test after a sync.
struct Seen {
  std::atomic<int> resumes{0};
  std::thread::id tid;
  std::string text;
};

class Wake : public ::testing::Test {
 protected:
  void SetUp() override {
    loop::ShardConfig sc = uringrpc::server::shard_config(uringrpc::ServerOptions{});
    sc.ring_entries = 64;
    sc.recv_buffer_count = 16;
    sc.recv_buffer_size = 4096;
    shard_ = std::make_unique<loop::Shard>(sc);
    shard_->start([] {});
    on_shard([&] { shard_tid_ = std::this_thread::get_id(); });
  }
  void TearDown() override {
    for (auto h : probes_) on_shard([h] { h.destroy(); });
    stop_shard();
  }
  void stop_shard() {
    if (!shard_) return;
    on_shard([&] { shard_->request_exit(); });
    shard_->join();
    shard_.reset();
  }
  // Runs fn on the shard thread, in its own loop turn, and waits for it.
  void on_shard(std::function<void()> fn) {
    std::promise<void> done;
    shard_->post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  // Starts a probe coroutine on the shard; the test destroys it at TearDown. The lambda is
  // kept: a coroutine lambda's captures live in the closure, not in the frame.
  template <class F>
  void start(F f) {
    auto keep = std::make_shared<F>(std::move(f));
    closures_.push_back(keep);
    on_shard([&] { probes_.push_back((*keep)().h); });
  }
  void destroy_probes() {
    for (auto h : probes_) on_shard([h] { h.destroy(); });
    probes_.clear();
    closures_.clear();  // with what they captured
  }
  // Waits (bounded) until pred holds; the shard turns meanwhile.
  template <class P>
  bool eventually(P pred) {
    for (int i = 0; i < 5000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(1ms);
    }
    return pred();
  }
  uringrpc::ShardRef ref() { return uringrpc::ShardRef(shard_->link()); }

  std::unique_ptr<loop::Shard> shard_;
  std::thread::id shard_tid_;
  std::vector<std::coroutine_handle<>> probes_;
  std::vector<std::shared_ptr<void>> closures_;
};

TEST_F(Wake, ThisShardOffAShardIsUsageErrorAndOnItNamesTheShard) {
  EXPECT_THROW(uringrpc::this_shard(), uringrpc::UsageError);
  EXPECT_THROW(Event(), uringrpc::UsageError);
  EXPECT_THROW(Promise<int>(), uringrpc::UsageError);
  EXPECT_THROW(Channel<int>(4), uringrpc::UsageError);
  bool current = false;
  unsigned index = 99;
  on_shard([&] {
    auto here = uringrpc::this_shard();
    current = here.is_current();
    index = here.index();
  });
  EXPECT_TRUE(current);
  EXPECT_EQ(index, 0u);
  EXPECT_FALSE(ref().is_current());
}

TEST_F(Wake, PostRunsOnTheShardThreadAndIsRefusedOnceItsLoopEnded) {
  std::promise<std::thread::id> ran;
  ASSERT_TRUE(ref().post([&] { ran.set_value(std::this_thread::get_id()); }));
  EXPECT_EQ(ran.get_future().get(), shard_tid_);

  auto kept = ref();
  stop_shard();
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> weak = token;
  bool ran_late = false;
  EXPECT_FALSE(kept.post([token = std::move(token), &ran_late] { ran_late = true; }));
  EXPECT_TRUE(weak.expired()) << "a refused function is destroyed at once";
  EXPECT_FALSE(ran_late);
}

TEST_F(Wake, EventSetBeforeAwaitDoesNotSuspend) {
  Seen seen;
  start([&]() -> Probe {
    Event ev;
    ev.set();
    co_await ev.wait();
    seen.resumes++;
  });
  EXPECT_EQ(seen.resumes.load(), 1) << "ran straight through inside the same turn";
}

TEST_F(Wake, EventSetFromAnotherThreadWakesEveryWaiterOnTheShard) {
  Event ev(ref());
  Seen a, b;
  for (Seen* s : {&a, &b}) {
    start([ev, s]() -> Probe {
      co_await ev.wait();
      s->tid = std::this_thread::get_id();
      s->resumes++;
    });
  }
  on_shard([] {});
  EXPECT_EQ(a.resumes.load() + b.resumes.load(), 0);
  std::thread([ev] { ev.set(); ev.set(); }).join();
  ASSERT_TRUE(eventually([&] { return a.resumes == 1 && b.resumes == 1; }));
  on_shard([] {});
  EXPECT_EQ(a.tid, shard_tid_);
  EXPECT_EQ(b.tid, shard_tid_);
  EXPECT_EQ(a.resumes.load(), 1) << "set twice, resumed once";
}

TEST_F(Wake, EventSetAfterTheWaitingFrameIsDestroyedResumesNothing) {
  Event ev(ref());
  Seen seen;
  start([ev, &seen]() -> Probe {
    co_await ev.wait();
    seen.resumes++;
  });
  destroy_probes();
  std::thread([ev] { ev.set(); }).join();
  on_shard([] {});
  on_shard([] {});
  EXPECT_EQ(seen.resumes.load(), 0);
}

TEST_F(Wake, EventAwaitedOffItsShardIsUsageError) {
  Event ev(ref());
  std::string error;
  auto co = [&]() -> Probe {
    try {
      co_await ev.wait();
    } catch (const uringrpc::UsageError& e) {
      error = e.what();
    }
  }();
  co.h.destroy();
  EXPECT_NE(error.find("shard"), std::string::npos) << error;
}

TEST_F(Wake, PromiseValueFromAnotherThreadResumesTheFutureOnItsShard) {
  Promise<std::string> promise(ref());
  auto future = promise.get_future();
  EXPECT_THROW(promise.get_future(), uringrpc::UsageError);
  Seen seen;
  start([&future, &seen]() -> Probe {
    seen.text = co_await future;
    seen.tid = std::this_thread::get_id();
    seen.resumes++;
  });
  EXPECT_EQ(seen.resumes.load(), 0);
  std::thread([&] {
    EXPECT_TRUE(promise.set_value("from a thread"));
    EXPECT_FALSE(promise.set_value("again")) << "a promise is fulfilled once";
  }).join();
  ASSERT_TRUE(eventually([&] { return seen.resumes == 1; }));
  on_shard([] {});
  EXPECT_EQ(seen.text, "from a thread");
  EXPECT_EQ(seen.tid, shard_tid_);
}

TEST_F(Wake, PromiseSetBeforeAwaitAndExceptionAndBrokenPromiseReachTheAwaiter) {
  Seen seen;
  start([&seen]() -> Probe {
    Promise<int> p;
    auto f = p.get_future();
    p.set_value(42);
    EXPECT_TRUE(f.ready());
    seen.text += std::to_string(co_await f) + ";";
    EXPECT_THROW((void)co_await f, uringrpc::UsageError) << "a value is taken once";

    Promise<void> failing;
    auto g = failing.get_future();
    failing.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
    try {
      co_await g;
    } catch (const std::runtime_error& e) {
      seen.text += std::string(e.what()) + ";";
    }

    Future<int> orphan;
    {
      Promise<int> dropped;
      orphan = dropped.get_future();
    }
    try {
      (void)co_await orphan;
    } catch (const uringrpc::BrokenPromise&) {
      seen.text += "broken";
    }
    seen.resumes++;
  });
  EXPECT_EQ(seen.resumes.load(), 1);
  EXPECT_EQ(seen.text, "42;boom;broken");
}

TEST_F(Wake, PromiseFulfilledAfterTheAwaitingFrameIsDestroyedDropsTheValue) {
  Promise<std::shared_ptr<int>> promise(ref());
  auto future = std::make_shared<uringrpc::Future<std::shared_ptr<int>>>(promise.get_future());
  Seen seen;
  start([future, &seen]() -> Probe {
    auto v = co_await *future;
    seen.resumes++;
  });
  destroy_probes();  // the cancelled call: frame (and its awaiter) destroyed mid-wait
  future.reset();
  auto value = std::make_shared<int>(7);
  std::weak_ptr<int> weak = value;
  std::thread([&] { EXPECT_TRUE(promise.set_value(std::move(value))); }).join();
  { auto gone = std::move(promise); }
  on_shard([] {});  // the posted wake-up ran (or was dropped) and released the state
  on_shard([] {});
  EXPECT_EQ(seen.resumes.load(), 0);
  EXPECT_TRUE(weak.expired()) << "the value is dropped with the last reference";
}

TEST_F(Wake, PromiseFulfilledAfterTheServerStoppedIsDropped) {
  Promise<std::shared_ptr<int>> promise(ref());
  auto future = promise.get_future();
  stop_shard();
  auto value = std::make_shared<int>(7);
  std::weak_ptr<int> weak = value;
  EXPECT_TRUE(promise.set_value(std::move(value))) << "accepted, and its wake-up refused";
  future = {};
  { auto gone = std::move(promise); }
  EXPECT_TRUE(weak.expired());
}

TEST_F(Wake, ChannelOfCapacityNAcceptsNThenRefusesTheNextUntilOneIsReceived) {
  Channel<int> ch(3, ref());
  EXPECT_EQ(ch.capacity(), 3u);
  EXPECT_TRUE(ch.try_send(1));
  EXPECT_TRUE(ch.try_send(2));
  EXPECT_TRUE(ch.try_send(3));
  EXPECT_FALSE(ch.try_send(4)) << "the N+1th send";
  EXPECT_EQ(ch.size(), 3u);
  Seen seen;
  start([ch, &seen]() -> Probe {
    auto v = co_await ch.receive();
    seen.text += std::to_string(*v);
    seen.resumes++;
  });
  EXPECT_EQ(seen.text, "1");
  EXPECT_TRUE(ch.try_send(4)) << "one slot freed";
  EXPECT_FALSE(ch.try_send(5));
  std::string moved = "kept";
  Channel<std::string> sc(1, ref());
  EXPECT_TRUE(sc.try_send(std::string("x")));
  EXPECT_FALSE(sc.try_send(std::move(moved)));
  EXPECT_EQ(moved, "kept") << "a refused rvalue is left untouched";
  EXPECT_THROW(Channel<int>(0, ref()), std::invalid_argument);
}

TEST_F(Wake, ChannelDropOldestKeepsTheNewestAndCountsTheDropped) {
  Channel<int> ch(2, ref());
  for (int i = 1; i <= 5; ++i) EXPECT_TRUE(ch.send_dropping_oldest(i));
  EXPECT_EQ(ch.dropped(), 3u);
  ch.close();
  EXPECT_FALSE(ch.send_dropping_oldest(6));
  EXPECT_FALSE(ch.try_send(6));
  Seen seen;
  start([ch, &seen]() -> Probe {
    while (auto v = co_await ch.receive()) seen.text += std::to_string(*v) + ",";
    seen.text += "end";
    seen.resumes++;
  });
  EXPECT_EQ(seen.text, "4,5,end") << "closed: what was queued, then nullopt";
}

TEST_F(Wake, ChannelReceiverWokenFromManyThreadsGetsEveryValueInEachSendersOrder) {
  constexpr int kThreads = 4, kPerThread = 2000;
  Channel<int> ch(16, ref());
  std::vector<int> last(kThreads, -1);
  std::atomic<int> received{0}, out_of_order{0}, off_shard{0};
  start([&, ch]() -> Probe {
    while (auto v = co_await ch.receive()) {
      if (std::this_thread::get_id() != shard_tid_) off_shard++;
      int t = *v / kPerThread, n = *v % kPerThread;
      if (n != last[t] + 1) out_of_order++;
      last[t] = n;
      received++;
    }
  });
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([ch, t] {
      for (int n = 0; n < kPerThread; ++n) {
        while (!ch.try_send(t * kPerThread + n)) std::this_thread::yield();  // full: retry
      }
    });
  }
  for (auto& s : senders) s.join();
  ch.close();
  ASSERT_TRUE(eventually([&] { return received == kThreads * kPerThread; })) << received;
  on_shard([] {});
  EXPECT_EQ(out_of_order.load(), 0);
  EXPECT_EQ(off_shard.load(), 0);
}

TEST_F(Wake, ChannelSendAfterTheReceivingFrameIsDestroyedResumesNothing) {
  Channel<std::shared_ptr<int>> ch(2, ref());
  Seen seen;
  start([ch, &seen]() -> Probe {
    auto v = co_await ch.receive();
    seen.resumes++;
  });
  destroy_probes();
  auto value = std::make_shared<int>(1);
  std::weak_ptr<int> weak = value;
  std::thread([&] { EXPECT_TRUE(ch.try_send(std::move(value))); }).join();
  on_shard([] {});
  on_shard([] {});
  EXPECT_EQ(seen.resumes.load(), 0);
  // A new receiver gets the value the dead one was woken for.
  start([ch, &seen]() -> Probe {
    auto v = co_await ch.receive();
    seen.text = std::to_string(**v);
    seen.resumes++;
  });
  EXPECT_EQ(seen.text, "1");
  destroy_probes();
  EXPECT_TRUE(weak.expired()) << "received, then dropped with the frame that held it";
}

TEST_F(Wake, ChannelClosesWhenItsLastHandleIsGoneButNotForItsSenders) {
  std::optional<Channel<int>> ch;
  ch.emplace(2, ref());
  uringrpc::ChannelSender<int> sender = ch->sender();
  std::optional<Channel<int>> copy = *ch;
  EXPECT_TRUE(sender.try_send(1));
  ch.reset();
  EXPECT_FALSE(sender.closed()) << "a copy of the channel still receives";
  EXPECT_TRUE(sender.try_send(2));
  EXPECT_EQ(sender.size(), 2u);
  copy.reset();
  EXPECT_TRUE(sender.closed()) << "the last receiving handle closed it";
  EXPECT_FALSE(sender.try_send(3));
  EXPECT_FALSE(sender.send_dropping_oldest(3));
  EXPECT_EQ(sender.capacity(), 2u);
}

TEST_F(Wake, ChannelOfACancelledReceivingHandlerIsClosedForItsSenders) {
  std::optional<uringrpc::ChannelSender<int>> sender;
  Seen seen;
  start([this, &sender, &seen]() -> Probe {
    Channel<int> ch(4, ref());
    sender = ch.sender();
    while (auto v = co_await ch.receive()) seen.text += std::to_string(*v);
    seen.resumes++;
  });
  std::thread([&] { EXPECT_TRUE(sender->try_send(7)); }).join();
  // The text is the shard's: read it there (the handler appends while this thread polls).
  ASSERT_TRUE(eventually([&] {
    std::string text;
    on_shard([&] { text = seen.text; });
    return text == "7";
  }));
  EXPECT_FALSE(sender->closed()) << "open while its handler waits in receive()";
  destroy_probes();  // what a cancelled RPC does to its handler's frame
  EXPECT_TRUE(sender->closed());
  std::thread([&] { EXPECT_FALSE(sender->try_send(8)); }).join();
  on_shard([] {});
  EXPECT_EQ(seen.resumes.load(), 0);
}

TEST_F(Wake, ChannelStaysOpenWhileOnlyAPendingReceiveHoldsIt) {
  // The handler's own handle may be gone (moved into a helper that ended) while its
  // receive() waits: the wait keeps the channel open, so it is woken by the next value.
  std::optional<uringrpc::ChannelSender<int>> sender;
  Seen seen;
  start([this, &sender, &seen]() -> Probe {
    auto receive = [&] {
      Channel<int> ch(1, ref());
      sender = ch.sender();
      return ch.receive();
    }();
    auto v = co_await receive;
    seen.text = v ? std::to_string(*v) : "closed";
    seen.resumes++;
  });
  EXPECT_FALSE(sender->closed());
  std::thread([&] { EXPECT_TRUE(sender->try_send(5)); }).join();
  ASSERT_TRUE(eventually([&] { return seen.resumes.load() == 1; }));
  EXPECT_EQ(seen.text, "5");
  destroy_probes();
  EXPECT_TRUE(sender->closed()) << "the awaiter, the last holder, is gone";
}

TEST_F(Wake, FromCallbackCompletedOnAnotherThreadResumesOnTheShard) {
  Seen seen;
  std::thread worker;
  start([&]() -> Probe {
    int v = co_await uringrpc::from_callback<int>([&](Completion<int> done) {
      worker = std::thread([done] {
        std::this_thread::sleep_for(5ms);
        done(5);
        done(6);  // ignored
      });
    });
    seen.text = std::to_string(v);
    seen.tid = std::this_thread::get_id();
    seen.resumes++;
  });
  ASSERT_TRUE(eventually([&] { return seen.resumes == 1; }));
  worker.join();
  on_shard([] {});
  EXPECT_EQ(seen.text, "5");
  EXPECT_EQ(seen.tid, shard_tid_);
}

TEST_F(Wake, FromCallbackCompletedInsideStartThrowingOrDroppedReachesTheAwaiter) {
  Seen seen;
  start([&]() -> Probe {
    co_await uringrpc::from_callback<void>([](Completion<void> done) { done(); });
    seen.text += "sync;";
    try {
      co_await uringrpc::from_callback<int>([](Completion<int>) { throw std::runtime_error("no start"); });
    } catch (const std::runtime_error& e) {
      seen.text += std::string(e.what()) + ";";
    }
    try {
      (void)co_await uringrpc::from_callback<int>([](Completion<int>) {});  // never called
    } catch (const uringrpc::BrokenPromise&) {
      seen.text += "broken;";
    }
    try {
      (void)co_await uringrpc::from_callback<int>(
          [](Completion<int> done) { done.fail(std::make_exception_ptr(std::out_of_range("failed"))); });
    } catch (const std::out_of_range& e) {
      seen.text += e.what();
    }
    seen.resumes++;
  });
  EXPECT_EQ(seen.resumes.load(), 1);
  EXPECT_EQ(seen.text, "sync;no start;broken;failed");
}

TEST_F(Wake, FromCallbackCancelledFrameRunsOnCancelAndALateCompletionIsDropped) {
  std::optional<Completion<std::shared_ptr<int>>> kept;
  std::atomic<int> cancels{0};
  std::thread::id cancel_tid;
  Seen seen;
  start([&]() -> Probe {
    auto v = co_await uringrpc::from_callback<std::shared_ptr<int>>(
        [&](Completion<std::shared_ptr<int>> done) { kept.emplace(done); },
        [&] {
          cancel_tid = std::this_thread::get_id();
          cancels++;
        });
    seen.resumes++;
  });
  EXPECT_EQ(cancels.load(), 0);
  destroy_probes();
  EXPECT_EQ(cancels.load(), 1);
  EXPECT_EQ(cancel_tid, shard_tid_);
  auto value = std::make_shared<int>(3);
  std::weak_ptr<int> weak = value;
  std::thread([&] {
    (*kept)(std::move(value));
    kept.reset();
  }).join();
  on_shard([] {});
  on_shard([] {});
  EXPECT_EQ(seen.resumes.load(), 0);
  EXPECT_TRUE(weak.expired());
}

TEST(WakeServer, RunOnRunsOnTheNamedShardAndIsRefusedAfterStop) {
  uringrpc::Server server({.shards = 2});
  EXPECT_THROW(server.run_on(0, [] {}), uringrpc::UsageError) << "before start()";
  server.start();
  EXPECT_THROW(server.shard(2), std::out_of_range);
  for (unsigned i = 0; i < 2; ++i) {
    std::promise<std::string> name;
    ASSERT_TRUE(server.run_on(i, [&] {
      char buf[16] = {};
      pthread_getname_np(pthread_self(), buf, sizeof buf);
      name.set_value(std::string(buf) + "@" + std::to_string(uringrpc::this_shard().index()));
    }));
    EXPECT_EQ(name.get_future().get(), "uringrpc/" + std::to_string(i) + "@" + std::to_string(i));
  }
  auto kept = server.shard(1);
  server.stop();
  EXPECT_FALSE(server.run_on(1, [] {}));
  EXPECT_FALSE(kept.post([] {}));
}

}  // namespace
