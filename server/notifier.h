// Carries "the durable position moved" from the store's writer thread to the KJ event loop
// thread, where subscriptions wait for it. However many subscribers wait, each group commit
// costs the writer one cross-thread fulfil at most; the waiters share it through a fork.
#pragma once

#include <kj/async.h>

#include <cstdint>
#include <mutex>

#include "storage/store.h"

namespace esd::server {

class DurableNotifier {
 public:
  // Construct and use on the KJ thread; `store` must outlive this.
  explicit DurableNotifier(storage::Store& store);
  ~DurableNotifier();
  KJ_DISALLOW_COPY(DurableNotifier);

  // Resolves once the store's durable position is past `position` (at once if it is).
  kj::Promise<void> WaitBeyond(uint64_t position);

 private:
  void OnDurable();  // writer thread

  storage::Store& store_;
  uint64_t observer_ = 0;
  // The fulfiller of the current generation's promise, handed to the writer thread.
  // (A std::mutex rather than kj::MutexGuarded: ThreadSanitizer sees through it.)
  std::mutex armed_mu_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> armed_;
  // KJ thread only: the current generation's promise, shared by all waiters.
  kj::Maybe<kj::ForkedPromise<void>> next_;
  uint64_t generation_ = 0;
};

}  // namespace esd::server
