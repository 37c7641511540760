// ProjectionRunner: waits for "at least position P" that end, by the position being applied
// or by the timeout, or that the caller drops, leave nothing behind.
#include "server/projection_runner.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <kj/timer.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>
#include <mutex>
#include <thread>
#include <limits>

#include "domain/order_commands.h"
#include "storage/test_util.h"

namespace esd::server {
namespace {

using storage::testing::MakeEvents;

// A runner on a small store, with a timer the test moves by hand (no real waiting). Not a
// fixture: KJ's destructors may throw, which a gtest fixture's destructor may not.
struct Harness {
  // `snapshot_every` 0: no periodic snapshot.
  explicit Harness(uint64_t snapshot_every = 0, kj::Duration interval = 60 * kj::SECONDS)
      : runner(*store, notifier, timer, damage_log, dir.path() / "orders.snap", snapshot_every, interval) {}
  storage::testing::TempDir dir;
  std::unique_ptr<storage::Store> store = storage::Store::Open(dir.path(), storage::testing::SmallOptions()).value();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TimerImpl timer{kj::origin<kj::TimePoint>()};
  AppendCompletions completions;
  DurableNotifier notifier{*store, completions};
  DamageLog damage_log;  // its lines go to the log (stderr)
  ProjectionRunner runner;
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

// Holds the write of the projection's snapshot file until Open(), or for at most 60 s (a
// hang guard: a loop that waits on the write itself would otherwise never return). Other
// files go ahead meanwhile: the log's writer must not wait behind the gate.
class SnapshotWriteGate final : public storage::FileFaults {
 public:
  SnapshotWriteGate() { storage::SetFileFaults(this); }
  ~SnapshotWriteGate() override {
    Open();
    storage::SetFileFaults(nullptr);
  }
  storage::InjectedFault Before(storage::FileOp op, const std::filesystem::path& path) override {
    if (op == storage::FileOp::kOpen && path.filename().string().rfind("orders.snap", 0) == 0) {
      std::unique_lock lock(mu_);
      held_ = true;
      cv_.notify_all();
      if (!cv_.wait_for(lock, std::chrono::seconds(60), [&] { return open_; })) released_by_guard_ = true;
    }
    return {};
  }
  void WaitUntilHeld() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool released_by_guard() {
    std::lock_guard lock(mu_);
    return released_by_guard_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, open_ = false, released_by_guard_ = false;
};

TEST(ProjectionRunner, APeriodicSnapshotIsWrittenOffTheEventLoop) {
  Harness h(/*snapshot_every=*/1, /*interval=*/0 * kj::SECONDS);
  SnapshotWriteGate gate;
  h.runner.Start();
  ASSERT_TRUE(h.store->AppendSync("s", storage::ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  // The runner applies the event, then snapshots; the file's write is held. (The loop runs
  // while another thread waits for that.)
  auto held = kj::newPromiseAndCrossThreadFulfiller<void>();
  std::thread watcher([&] {
    gate.WaitUntilHeld();
    held.fulfiller->fulfill();
  });
  held.promise.wait(h.io.waitScope);
  watcher.join();
  // Meanwhile the loop goes on: more events are applied and a query waiting for them answers.
  ASSERT_TRUE(h.store->AppendSync("s", storage::ExpectedVersion::Any(), MakeEvents("s", 1, 2)).ok());
  EXPECT_EQ(h.runner.WaitFor(2, 5 * kj::SECONDS).wait(h.io.waitScope), ProjectionRunner::Wait::kApplied);
  EXPECT_FALSE(gate.released_by_guard()) << "the query waited for the snapshot's write";
  gate.Open();
}

// The nice value of a thread of this process (field 19 of /proc/self/task/TID/stat).
int NiceOf(const std::filesystem::path& task) {
  std::ifstream in(task / "stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // from field 3, the state
  std::string field;
  for (int k = 3; k <= 19 && fields >> field; ++k) {
    if (k == 19) return std::stoi(field);
  }
  ADD_FAILURE() << "no nice value in " << stat;
  return 0;
}

long ThreadsAtNice(int nice) {
  long n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) n += NiceOf(task.path()) == nice;
  return n;
}

// Encoding a large projection takes the writer a second of CPU: it must not take it from the
// event loop, whose every client waits while it is off its core.
TEST(ProjectionRunner, TheSnapshotWriterGivesWayToTheEventLoop) {
  const std::filesystem::path self = "/proc/self/task/" + std::to_string(::gettid());
  const int loop_nice = NiceOf(self);
  if (loop_nice >= 10) GTEST_SKIP() << "this test runs at nice " << loop_nice << ": the writer cannot be below it";
  const long before = ThreadsAtNice(10);
  Harness h;
  h.runner.Start();
  ASSERT_TRUE(h.runner.SaveSnapshot().ok());  // runs on the writer, after what was posted at construction
  EXPECT_EQ(ThreadsAtNice(10), before + 1);
  EXPECT_EQ(NiceOf(self), loop_nice) << "the loop's own thread was lowered";
}

}  // namespace
}  // namespace esd::server

namespace esd::server {
namespace {

// What forget-customer uses: a wait for "everything below the end", a catch-up now, and
// dropping orders at once.
TEST(ProjectionRunner, CaughtUpToWaitsForEveryEventBelowTheEndEvenTheFirst) {
  Harness h;
  EXPECT_EQ(h.runner.CaughtUpTo(0, 5 * kj::SECONDS).wait(h.io.waitScope), ProjectionRunner::Wait::kApplied);
  // The event at position 0 is what "end 1" waits for (WaitFor(0) would not wait at all).
  ASSERT_TRUE(h.store->AppendSync("other", storage::ExpectedVersion::Any(), MakeEvents("other", 0, 1)).ok());
  auto waited = h.runner.CaughtUpTo(1, 5 * kj::SECONDS);
  EXPECT_EQ(h.runner.waiter_count(), 1u) << "not applied yet: the runner has not started";
  h.runner.Start();
  EXPECT_EQ(waited.wait(h.io.waitScope), ProjectionRunner::Wait::kApplied);
  EXPECT_EQ(h.runner.checkpoint(), 1u);
  EXPECT_EQ(h.runner.waiter_count(), 0u);
}

TEST(ProjectionRunner, CatchUpNowAppliesWhatCameSinceAndDropForgetsOrdersAtOnce) {
  Harness h;
  h.runner.Start();
  domain::OrderCommands orders(*h.store);
  for (auto [id, customer] : {std::pair{"o1", "c1"}, {"o2", "c1"}, {"o3", "c2"}}) {
    ASSERT_TRUE(std::holds_alternative<domain::OrderCommands::Accepted>(
        orders.Execute(domain::CreateOrder{id, customer}, {std::string("create-") + id, "", ""})));
  }
  // No turn of the loop in between: CatchUpNow applies them itself.
  ASSERT_TRUE(h.runner.CatchUpNow().ok());
  EXPECT_EQ(h.runner.checkpoint(), h.store->DurablePosition().value);
  EXPECT_EQ(h.runner.OrdersOf("c1").size(), 2u);
  h.runner.Drop({"o1", "o2", "never-there"});
  EXPECT_TRUE(h.runner.OrdersOf("c1").empty());
  EXPECT_EQ(h.runner.projection().Get("o1"), nullptr);
  EXPECT_NE(h.runner.projection().Get("o3"), nullptr);
  ASSERT_TRUE(h.runner.SaveSnapshot().ok());
  EXPECT_EQ(domain::OrderProjection::LoadSnapshot(*h.store, h.dir.path() / "orders.snap").order_count(), 1u);
}

}  // namespace
}  // namespace esd::server
