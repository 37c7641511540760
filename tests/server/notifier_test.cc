// DurableNotifier: a wait resolves when the writer thread moves the durable position, told
// through AppendCompletions' wake-up.
#include "server/notifier.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>

#include "storage/test_util.h"

namespace esd::server {
namespace {

using storage::testing::MakeEvents;

// A notifier on a small store, with the loop it runs on. Not a fixture: KJ's destructors may
// throw, which a gtest fixture's destructor may not.
struct Harness {
  storage::testing::TempDir dir;
  std::unique_ptr<storage::Store> store = storage::Store::Open(dir.path(), storage::testing::SmallOptions()).value();
  kj::AsyncIoContext io = kj::setupAsyncIo();
  AppendCompletions completions;
  DurableNotifier notifier{*store, completions};
};

TEST(DurableNotifier, WaitResolvesAtOnceWhenThePositionIsAlreadyPast) {
  Harness h;
  ASSERT_TRUE(h.store->AppendSync("s", storage::ExpectedVersion::Any(), MakeEvents("s", 0, 2)).ok());
  auto p = h.notifier.WaitBeyond(1);
  EXPECT_TRUE(p.poll(h.io.waitScope));
}

TEST(DurableNotifier, WaitersShareOneWakeUpFromTheWriterThread) {
  Harness h;
  auto a = h.notifier.WaitBeyond(0);
  auto b = h.notifier.WaitBeyond(0);
  auto c = h.notifier.WaitBeyond(5);  // needs more than one append
  EXPECT_FALSE(a.poll(h.io.waitScope));
  h.store->Append("s", storage::ExpectedVersion::Any(), MakeEvents("s", 0, 1), [](storage::AppendResult) {});
  a.wait(h.io.waitScope);
  EXPECT_TRUE(b.poll(h.io.waitScope));
  EXPECT_FALSE(c.poll(h.io.waitScope)) << "position 1 is not past 5";
  ASSERT_TRUE(h.store->AppendSync("s", storage::ExpectedVersion::Any(), MakeEvents("s", 1, 5)).ok());
  c.wait(h.io.waitScope);
}

TEST(DurableNotifier, AWaitResolvesWhenAGroupMovesThePositionWithItsAppendsAnsweredOnTheSameLoop) {
  Harness h;
  auto moved = h.notifier.WaitBeyond(0);
  auto expect = h.completions.Expect();
  h.store->Append("s", storage::ExpectedVersion::Any(), MakeEvents("s", 0, 1), std::move(expect.done));
  EXPECT_TRUE(expect.result.wait(h.io.waitScope)->ok());
  moved.wait(h.io.waitScope);
  EXPECT_GT(h.store->DurablePosition().value, 0u);
}

}  // namespace
}  // namespace esd::server
