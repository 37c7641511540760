// ProjectionRunner: waits for "at least position P" that end, by the position being applied
// or by the timeout, or that the caller drops, leave nothing behind.
#include "server/projection_runner.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/timer.h>

#include <cstdio>
#include <limits>

#include "storage/test_util.h"

namespace esd::server {
namespace {

using storage::testing::MakeEvents;

// A runner on a small store, with a timer the test moves by hand (no real waiting). Not a
// fixture: KJ's destructors may throw, which a gtest fixture's destructor may not.
struct Harness {
  storage::testing::TempDir dir;
  std::unique_ptr<storage::Store> store = storage::Store::Open(dir.path(), storage::testing::SmallOptions()).value();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TimerImpl timer{kj::origin<kj::TimePoint>()};
  DurableNotifier notifier{*store};
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> log{std::tmpfile(), &std::fclose};
  DamageLog damage_log{log.get()};
  ProjectionRunner runner{*store, notifier, timer, damage_log, dir.path() / "orders.snap", 0};
};

TEST(ProjectionRunner, AWaitThatTimesOutLeavesNoWaiterBehind) {
  Harness h;
  h.runner.Start();
  constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  for (int i = 0; i < 1000; ++i) {
    auto waited = h.runner.WaitFor(kNever, 5 * kj::SECONDS);
    h.timer.advanceTo(h.timer.now() + 6 * kj::SECONDS);
    ASSERT_EQ(waited.wait(h.io.waitScope), ProjectionRunner::Wait::kTimeout);
  }
  EXPECT_EQ(h.runner.waiter_count(), 0u) << "each timed-out wait left its waiter behind";
}

TEST(ProjectionRunner, AWaitTheCallerDropsLeavesNoWaiterBehind) {
  Harness h;
  h.runner.Start();
  for (int i = 0; i < 100; ++i) {
    auto waited = h.runner.WaitFor(1'000'000 + i, 5 * kj::SECONDS);  // dropped unresolved, like a cancelled call
  }
  EXPECT_EQ(h.runner.waiter_count(), 0u);
}

TEST(ProjectionRunner, AWaitForAPositionResolvesWhenItIsAppliedAndIsGone) {
  Harness h;
  h.runner.Start();
  auto waited = h.runner.WaitFor(2, 5 * kj::SECONDS);
  EXPECT_EQ(h.runner.waiter_count(), 1u);
  ASSERT_TRUE(h.store->AppendSync("other", storage::ExpectedVersion::Any(), MakeEvents("other", 0, 3)).ok());
  EXPECT_EQ(waited.wait(h.io.waitScope), ProjectionRunner::Wait::kApplied);
  EXPECT_EQ(h.runner.waiter_count(), 0u);
}

TEST(ProjectionRunner, ForeignEventsInOrderStreamsAreCountedForTheMetrics) {
  Harness h;
  h.runner.Start();
  EXPECT_EQ(h.runner.skipped_events(), 0u);
  const auto json = [] {
    return storage::EventData{storage::EventId::Random(), "OrderCreated", "application/json", "", "{}"};
  };
  ASSERT_TRUE(h.store->AppendSync("order-1", storage::ExpectedVersion::Any(), {json(), json()}).ok());
  ASSERT_TRUE(h.store->AppendSync("other", storage::ExpectedVersion::Any(), MakeEvents("other", 0, 1)).ok());
  ASSERT_EQ(h.runner.WaitFor(2, 5 * kj::SECONDS).wait(h.io.waitScope), ProjectionRunner::Wait::kApplied);
  EXPECT_EQ(h.runner.skipped_events(), 2u);
}

}  // namespace
}  // namespace esd::server
