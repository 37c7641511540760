#include "server/notifier.h"

#include <kj/debug.h>

namespace esd::server {

DurableNotifier::DurableNotifier(storage::Store& store, AppendCompletions& wake) : store_(store), wake_(wake) {
  observer_ = store_.AddDurableObserver(wake_.DurableObserver());
}

DurableNotifier::~DurableNotifier() {
  store_.RemoveDurableObserver(observer_);  // waits for a call in progress
}

kj::Promise<void> DurableNotifier::WaitBeyond(uint64_t position) {
  if (store_.DurablePosition().value > position) return kj::READY_NOW;
  if (next_ == nullptr) {
    kj::Promise<void> moved = wake_.NextDurableMove();
    // The writer may have moved between the check above and asking for the next move: look
    // again so that such a move is never missed (at worst the generation ends at once,
    // spuriously).
    if (store_.DurablePosition().value > position) moved = kj::READY_NOW;
    next_ = moved.fork();
    ++generation_;
  }
  const uint64_t generation = generation_;
  return KJ_ASSERT_NONNULL(next_).addBranch().then([this, position, generation]() {
    if (generation_ == generation) next_ = nullptr;  // the first waiter to wake retires it
    return WaitBeyond(position);
  });
}

}  // namespace esd::server
