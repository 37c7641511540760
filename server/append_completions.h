// Brings what the store's writer thread has to say back to the KJ event loop: append
// results, and that the durable position moved. One wake-up per group commit carries both,
// rather than one per append or one each.
//
// A cross-thread fulfiller per append (what AppendOnLoop used before) costs the writer an
// eventfd write and the loop a wake-up for every append: with 64 clients appending one event
// each, that was a syscall per append on each side. Here the writer queues each result and
// wakes the loop only when it is armed; the loop, once woken, answers everything queued by
// then, and arms the next wake-up.
//
// The durable position's moves come the same way (DurableNotifier waits on them): the store
// tells its durable observers first and runs the group's callbacks after, so the move takes
// the armed wake-up and the results ride on it. With a wake-up of its own, every group cost
// the writer a second eventfd write and a lock that the woken loop at times waited on
// (strace of W1). On the loop, the appends are answered first and the move is told on the
// next turn: the order projection's catch-up ran before the answers left, on every append's
// path. Measured in docs/performance.md.
#pragma once

#include <kj/async.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "storage/store.h"

namespace esd::server {

class AppendCompletions final : private kj::TaskSet::ErrorHandler {
 public:
  // KJ thread. Nothing is armed until the first Expect().
  AppendCompletions();
  // KJ thread. Results that arrive later are dropped; promises not yet resolved are broken
  // (their callers are gone by then: the daemon stops after its appends were answered).
  ~AppendCompletions();
  AppendCompletions(const AppendCompletions&) = delete;
  AppendCompletions& operator=(const AppendCompletions&) = delete;

  // KJ thread: a promise for one append's result, and the callback to give Store::Append for
  // it (it may run on any thread, once). The result is boxed: g++ 12 misreads a std::variant
  // inside kj's ExceptionOr.
  struct Expected {
    kj::Promise<kj::Own<storage::AppendResult>> result;
    storage::AppendCallback done;
  };
  Expected Expect();

  // Any thread: what to give Store::AddDurableObserver. It may outlive this (the store may
  // call it as it closes); a move told after this is gone is dropped.
  std::function<void(storage::GlobalPosition)> DurableObserver() const;
  // KJ thread: resolves on the loop after the next durable move, one turn after the results
  // that came with it were answered (their answers go out first). Moves told before this
  // call are forgotten: the caller looks at the durable position after calling it. One
  // asker at a time: a second call breaks the first's promise.
  kj::Promise<void> NextDurableMove();

  // KJ thread: results waiting for their promise (0 once the loop has caught up). For tests.
  size_t waiting() const { return waiting_.size(); }
  // KJ thread: how often the loop was woken to answer. For tests.
  uint64_t wakeups() const { return wakeups_; }

 private:
  struct Shared;  // the queue the writer fills; outlives this while callbacks hold it
  void Arm();     // KJ thread: the next results wake the loop
  void Answer();  // KJ thread: tells of a durable move, and resolves every queued result
  void taskFailed(kj::Exception&& exception) override;

  std::shared_ptr<Shared> shared_;
  std::unordered_map<uint64_t, kj::Own<kj::PromiseFulfiller<kj::Own<storage::AppendResult>>>> waiting_;
  uint64_t next_id_ = 0;
  uint64_t wakeups_ = 0;
  bool armed_ = false;  // a wake-up is armed (or the next turn will answer)
  kj::Own<kj::PromiseFulfiller<void>> durable_move_;  // NextDurableMove's, until told
  kj::TaskSet wake_{*this};
};

}  // namespace esd::server
