#include "server/append_completions.h"

#include <kj/debug.h>

#include <mutex>
#include <utility>
#include <vector>

namespace esd::server {

struct AppendCompletions::Shared {
  std::mutex mu;
  std::vector<std::pair<uint64_t, storage::AppendResult>> queue;  // mu
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> wake;           // mu: armed by the loop
  bool durable_moved = false;                                    // mu: since the loop last looked
  bool closed = false;                                           // mu

  // Any thread (the writer's): queues the result, and wakes the loop if it is armed.
  void Post(uint64_t id, storage::AppendResult result) {
    Tell([&] { queue.emplace_back(id, std::move(result)); });
  }
  // Any thread (the writer's): the durable position moved; wakes the loop if it is armed.
  void PostDurableMove() {
    Tell([&] { durable_moved = true; });
  }

 private:
  // Makes `change` under mu, then wakes the loop if it is armed (the first to tell it after
  // it armed does; the rest only queue).
  template <typename Change>
  void Tell(Change&& change) {
    kj::Own<kj::CrossThreadPromiseFulfiller<void>> wake_now;
    {
      std::lock_guard lock(mu);
      if (closed) return;
      change();
      wake_now = std::move(wake);
    }
    if (wake_now.get() != nullptr) wake_now->fulfill();
  }
};

AppendCompletions::AppendCompletions() : shared_(std::make_shared<Shared>()) {}

AppendCompletions::~AppendCompletions() {
  std::lock_guard lock(shared_->mu);
  shared_->closed = true;
  shared_->queue.clear();
  shared_->wake = nullptr;
}

AppendCompletions::Expected AppendCompletions::Expect() {
  const uint64_t id = next_id_++;
  auto paf = kj::newPromiseAndFulfiller<kj::Own<storage::AppendResult>>();
  waiting_.emplace(id, kj::mv(paf.fulfiller));
  if (!armed_) Arm();
  return Expected{kj::mv(paf.promise), [shared = shared_, id](storage::AppendResult r) { shared->Post(id, std::move(r)); }};
}

std::function<void(storage::GlobalPosition)> AppendCompletions::DurableObserver() const {
  return [shared = shared_](storage::GlobalPosition) { shared->PostDurableMove(); };
}

kj::Promise<void> AppendCompletions::NextDurableMove() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->durable_moved = false;
  }
  auto paf = kj::newPromiseAndFulfiller<void>();
  durable_move_ = kj::mv(paf.fulfiller);
  if (!armed_) Arm();
  return kj::mv(paf.promise);
}

void AppendCompletions::Arm() {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  bool queued;
  {
    std::lock_guard lock(shared_->mu);
    queued = !shared_->queue.empty() || (durable_move_.get() != nullptr && shared_->durable_moved);
    if (!queued) shared_->wake = kj::mv(paf.fulfiller);
  }
  // Results queued while nothing was armed are answered on the loop's next turn.
  kj::Promise<void> woken = queued ? kj::evalLater([] {}) : kj::mv(paf.promise);
  armed_ = true;
  wake_.add(woken.then([this] {
    armed_ = false;
    ++wakeups_;
    Answer();
  }));
}

void AppendCompletions::taskFailed(kj::Exception&& exception) {
  KJ_LOG(ERROR, "answering appends failed", exception);
}

void AppendCompletions::Answer() {
  std::vector<std::pair<uint64_t, storage::AppendResult>> ready;
  bool moved;
  {
    std::lock_guard lock(shared_->mu);
    ready.swap(shared_->queue);
    moved = std::exchange(shared_->durable_moved, false);
  }
  for (auto& [id, result] : ready) {
    auto it = waiting_.find(id);
    KJ_ASSERT(it != waiting_.end(), "an append was answered twice, or never asked for", id);
    auto fulfiller = kj::mv(it->second);
    waiting_.erase(it);
    fulfiller->fulfill(kj::heap<storage::AppendResult>(std::move(result)));
  }
  // The move after the answers, one turn later: the appenders' answers leave first, and the
  // subscribers and the order projection catch up after (docs/performance.md).
  // evalLater, not evalLast: a subscription pumping pushes through evalLater would starve
  // an evalLast.
  if (moved && durable_move_.get() != nullptr) {
    wake_.add(kj::evalLater([told = kj::mv(durable_move_)]() mutable { told->fulfill(); }));
  }
  if ((!waiting_.empty() || durable_move_.get() != nullptr) && !armed_) Arm();
}

}  // namespace esd::server
