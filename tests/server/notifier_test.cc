// DurableNotifier: a wait resolves when the writer thread moves the durable position, told
// through AppendCompletions' wake-up.
#include "server/notifier.h"

#include <gtest/gtest.h>
#include <kj/async-io.h>

#include "storage/test_util.h"

namespace esd::server {
namespace {

using storage::testing::MakeEvents;

TEST(DurableNotifier, WaitResolvesAtOnceWhenThePositionIsAlreadyPast) {
  storage::testing::TempDir dir;
  auto store = storage::Store::Open(dir.path(), storage::testing::SmallOptions()).value();
  ASSERT_TRUE(store->AppendSync("s", storage::ExpectedVersion::Any(), MakeEvents("s", 0, 2)).ok());
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  DurableNotifier notifier(*store, completions);
  auto p = notifier.WaitBeyond(1);
  EXPECT_TRUE(p.poll(io.waitScope));
}

TEST(DurableNotifier, WaitersShareOneWakeUpFromTheWriterThread) {
  storage::testing::TempDir dir;
  auto store = storage::Store::Open(dir.path(), storage::testing::SmallOptions()).value();
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  DurableNotifier notifier(*store, completions);
  auto a = notifier.WaitBeyond(0);
  auto b = notifier.WaitBeyond(0);
  auto c = notifier.WaitBeyond(5);  // needs more than one append
  EXPECT_FALSE(a.poll(io.waitScope));
  store->Append("s", storage::ExpectedVersion::Any(), MakeEvents("s", 0, 1), [](storage::AppendResult) {});
  a.wait(io.waitScope);
  EXPECT_TRUE(b.poll(io.waitScope));
  EXPECT_FALSE(c.poll(io.waitScope)) << "position 1 is not past 5";
  ASSERT_TRUE(store->AppendSync("s", storage::ExpectedVersion::Any(), MakeEvents("s", 1, 5)).ok());
  c.wait(io.waitScope);
}

TEST(DurableNotifier, AWaitResolvesWhenAGroupMovesThePositionWithItsAppendsAnsweredOnTheSameLoop) {
  storage::testing::TempDir dir;
  auto store = storage::Store::Open(dir.path(), storage::testing::SmallOptions()).value();
  auto io = kj::setupAsyncIo();
  AppendCompletions completions;
  DurableNotifier notifier(*store, completions);
  auto moved = notifier.WaitBeyond(0);
  auto expect = completions.Expect();
  store->Append("s", storage::ExpectedVersion::Any(), MakeEvents("s", 0, 1), std::move(expect.done));
  EXPECT_TRUE(expect.result.wait(io.waitScope)->ok());
  moved.wait(io.waitScope);
  EXPECT_GT(store->DurablePosition().value, 0u);
}

}  // namespace
}  // namespace esd::server
