// Carries "the durable position moved" from the store's writer thread to the KJ event loop
// thread, where subscriptions wait for it. However many subscribers wait, a group commit
// wakes the loop once, on the wake-up that brings the group's append results
// (AppendCompletions); the waiters share it through a fork.
#pragma once

#include <kj/async.h>

#include <cstdint>

#include "server/append_completions.h"
#include "storage/store.h"

namespace esd::server {

class DurableNotifier {
 public:
  // Construct and use on the KJ thread; `store` and `wake` must outlive this.
  DurableNotifier(storage::Store& store, AppendCompletions& wake);
  ~DurableNotifier();
  KJ_DISALLOW_COPY(DurableNotifier);

  // Resolves once the store's durable position is past `position` (at once if it is).
  kj::Promise<void> WaitBeyond(uint64_t position);

 private:
  storage::Store& store_;
  AppendCompletions& wake_;
  uint64_t observer_ = 0;
  // The current generation: the next durable move, shared by all waiters.
  kj::Maybe<kj::ForkedPromise<void>> next_;
  uint64_t generation_ = 0;
};

}  // namespace esd::server
