#include "server/context.h"

#include <kj/function.h>

#include <memory>

namespace esd::server {

kj::Promise<kj::Own<storage::AppendResult>> AppendOnLoop(ServerContext& ctx, std::string stream,
                                                         storage::ExpectedVersion expected,
                                                         std::vector<storage::EventData> events) {
  using Boxed = kj::Own<storage::AppendResult>;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Boxed>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Boxed>>>(kj::mv(paf.fulfiller));
  ctx.store.Append(std::move(stream), expected, std::move(events), [fulfiller](storage::AppendResult r) {
    (*fulfiller)->fulfill(kj::heap<storage::AppendResult>(std::move(r)));
  });
  // Counted down when the result is taken or the caller gave up: a graceful stop waits for
  // answers that someone still wants, not for disconnected clients.
  ++ctx.appends_in_flight;
  return paf.promise.attach(kj::defer([&ctx] {
    if (--ctx.appends_in_flight == 0 && ctx.appends_answered.get() != nullptr) {
      // The caller's continuation and capnp's sending of its answer were armed depth first
      // when the result arrived, so they run before this, which is armed last.
      kj::evalLater([&ctx] {
        if (ctx.appends_in_flight == 0 && ctx.appends_answered.get() != nullptr) {
          ctx.appends_answered->fulfill();
          ctx.appends_answered = nullptr;
        }
      }).detach([](kj::Exception&&) {});
    }
  }));
}

kj::Promise<void> WhenAppendsAnswered(ServerContext& ctx) {
  // Even with none in flight, an answer may have been armed and not sent yet: go last.
  if (ctx.appends_in_flight == 0) return kj::evalLater([] {});
  auto paf = kj::newPromiseAndFulfiller<void>();
  ctx.appends_answered = kj::mv(paf.fulfiller);
  return kj::mv(paf.promise);
}

void OffLoopJobs::Start(std::function<void()> job) {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->ended->load(std::memory_order_acquire)) {
      it->thread.join();
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
  auto ended = std::make_shared<std::atomic<bool>>(false);
  jobs_.push_back({std::thread([job = std::move(job), ended] {
                     job();
                     ended->store(true, std::memory_order_release);
                   }),
                   ended});
}

void OffLoopJobs::JoinAll() {
  for (auto& j : jobs_) j.thread.join();
  jobs_.clear();
}

}  // namespace esd::server
