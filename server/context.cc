#include "server/context.h"

#include <kj/function.h>

#include <memory>

#include "storage/background.h"

namespace esd::server {

namespace {

// `result` counts in ctx.appends_in_flight until it is taken or its caller gave up.
kj::Promise<kj::Own<storage::AppendResult>> AnsweredOnLoop(ServerContext& ctx,
                                                           kj::Promise<kj::Own<storage::AppendResult>> result) {
  // Counted down when the result is taken or the caller gave up: a graceful stop waits for
  // answers that someone still wants, not for disconnected clients.
  ++ctx.appends_in_flight;
  return result.attach(kj::defer([&ctx] {
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

}  // namespace

kj::Promise<kj::Own<storage::AppendResult>> AppendOnLoop(ServerContext& ctx, std::string stream,
                                                         storage::ExpectedVersion expected,
                                                         std::vector<storage::EventData> events) {
  auto expect = ctx.append_completions.Expect();
  ctx.store.Append(std::move(stream), expected, std::move(events), std::move(expect.done));
  return AnsweredOnLoop(ctx, kj::mv(expect.result));
}

kj::Promise<kj::Own<storage::AppendResult>> AppendOnLoop(ServerContext& ctx, std::string stream,
                                                         storage::ExpectedVersion expected,
                                                         storage::PackedEvents events) {
  auto expect = ctx.append_completions.Expect();
  ctx.store.Append(std::move(stream), expected, std::move(events), std::move(expect.done));
  return AnsweredOnLoop(ctx, kj::mv(expect.result));
}

kj::Promise<kj::Own<storage::AppendResult>> WriteOnLoop(ServerContext& ctx,
                                                        const std::function<void(storage::AppendCallback)>& start) {
  auto expect = ctx.append_completions.Expect();
  start(std::move(expect.done));
  return AnsweredOnLoop(ctx, kj::mv(expect.result));
}

kj::Promise<void> WhenAppendsAnswered(ServerContext& ctx) {
  // Even with none in flight, an answer may have been armed and not sent yet: go last.
  if (ctx.appends_in_flight == 0) return kj::evalLater([] {});
  auto paf = kj::newPromiseAndFulfiller<void>();
  ctx.appends_answered = kj::mv(paf.fulfiller);
  return kj::mv(paf.promise);
}

void OffLoopJobs::Start(std::function<void()> job) {
  // Threads that have ended are joined here, so a daemon that verifies every hour does not
  // collect them.
  std::erase_if(threads_, [](Thread& t) {
    if (!t.ended->load(std::memory_order_acquire)) return false;
    t.thread.join();
    return true;
  });
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(job));
  if (working_ < kMaxThreads) {
    ++working_;
    auto ended = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([this, ended] {
                          Work();
                          ended->store(true, std::memory_order_release);
                        }),
                        ended});
    storage::NameThread(threads_.back().thread, "esd-jobs");
  }
}

void OffLoopJobs::Work() {
  while (true) {
    std::function<void()> job;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) {
        --working_;
        return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

void OffLoopJobs::JoinAll() {
  // Jobs are only added from this thread, so once these threads are joined the queue they
  // drained is empty.
  for (auto& t : threads_) t.thread.join();
  threads_.clear();
}

}  // namespace esd::server
