#include "server/notifier.h"

#include <kj/debug.h>

namespace esd::server {

DurableNotifier::DurableNotifier(storage::Store& store, AppendCompletions& wake) : store_(store), wake_(wake) {
  wake_.OnDurableMove([this] { EndGeneration(); });
  observer_ = store_.AddDurableObserver(wake_.DurableObserver());
}

DurableNotifier::~DurableNotifier() {
  store_.RemoveDurableObserver(observer_);  // waits for a call in progress
  wake_.OnDurableMove(nullptr);
}

void DurableNotifier::EndGeneration() {
  if (armed_) {
    armed_->fulfill();
    armed_ = nullptr;
  }
}

kj::Promise<void> DurableNotifier::WaitBeyond(uint64_t position) {
  if (store_.DurablePosition().value > position) return kj::READY_NOW;
  if (next_ == nullptr) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    armed_ = kj::mv(paf.fulfiller);
    next_ = paf.promise.fork();
    ++generation_;
    wake_.WantDurableMove();
    // The writer may have moved between the check above and asking for the next move: look
    // again so that such a move is never missed (at worst the generation ends at once,
    // spuriously).
    if (store_.DurablePosition().value > position) EndGeneration();
  }
  const uint64_t generation = generation_;
  return KJ_ASSERT_NONNULL(next_).addBranch().then([this, position, generation]() {
    if (generation_ == generation) next_ = nullptr;  // the first waiter to wake retires it
    return WaitBeyond(position);
  });
}

}  // namespace esd::server
