#include "server/notifier.h"

#include <kj/debug.h>

namespace esd::server {

DurableNotifier::DurableNotifier(storage::Store& store) : store_(store) {
  observer_ = store_.AddDurableObserver([this](storage::GlobalPosition) { OnDurable(); });
}

DurableNotifier::~DurableNotifier() {
  store_.RemoveDurableObserver(observer_);  // waits for a call in progress
}

void DurableNotifier::OnDurable() {
  std::lock_guard lock(armed_mu_);
  if (armed_) {
    armed_->fulfill();
    armed_ = nullptr;
  }
}

kj::Promise<void> DurableNotifier::WaitBeyond(uint64_t position) {
  if (store_.DurablePosition().value > position) return kj::READY_NOW;
  if (next_ == nullptr) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    {
      std::lock_guard lock(armed_mu_);
      armed_ = kj::mv(paf.fulfiller);
    }
    next_ = paf.promise.fork();
    ++generation_;
    // The writer may have moved between the check above and arming: look again so that
    // such a move is never missed (at worst the generation ends at once, spuriously).
    if (store_.DurablePosition().value > position) OnDurable();
  }
  const uint64_t generation = generation_;
  return KJ_ASSERT_NONNULL(next_).addBranch().then([this, position, generation]() {
    if (generation_ == generation) next_ = nullptr;  // the first waiter to wake retires it
    return WaitBeyond(position);
  });
}

}  // namespace esd::server
