#include "server/ops_metrics.h"

#include <gtest/gtest.h>

#include <atomic>

#include "storage/test_util.h"

namespace esd::server {
namespace {

using storage::ExpectedVersion;
using storage::Status;
using storage::testing::MakeEvents;

TEST(AppendOutcome, NamesEachResultAsTheClientSeesIt) {
  EXPECT_EQ(AppendOutcome(Status::Ok()), "ok");
  EXPECT_EQ(AppendOutcome(Status::WrongExpectedVersion("s", ExpectedVersion::NoStream(), storage::StreamVersion(0))),
            "wrong_expected_version");
  EXPECT_EQ(AppendOutcome(Status::InvalidArgument("x")), "invalid_argument");
  EXPECT_EQ(AppendOutcome(Status::IdempotencyConflict("x")), "idempotency_conflict");
  EXPECT_EQ(AppendOutcome(Status::OutOfSpace("x")), "out_of_space");
  EXPECT_EQ(AppendOutcome(Status::Overloaded("x")), "overloaded");
  EXPECT_EQ(AppendOutcome(Status::StreamDeleted("s")), "stream_deleted");
  EXPECT_EQ(AppendOutcome(Status::NotFound("x")), "not_found");
  EXPECT_EQ(AppendOutcome(Status::IOError("x")), "unavailable");
  EXPECT_EQ(AppendOutcome(Status::Closed("x")), "unavailable");
}

TEST(LastRun, SaysWhenTheLastRunEndedAndHowNotTheFirst) {
  LastRun run;
  EXPECT_FALSE(run.ran());
  EXPECT_EQ(run.timestamp_seconds(), 0);
  EXPECT_FALSE(run.success());
  run.Record(true, std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)));
  EXPECT_TRUE(run.ran());
  EXPECT_TRUE(run.success());
  EXPECT_EQ(run.timestamp_seconds(), 1'700'000'000);
  run.Record(false, std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'100'500)));
  EXPECT_FALSE(run.success());
  EXPECT_EQ(run.timestamp_seconds(), 1'700'000'100.5);
}

TEST(SubscriptionCursors, LagIsTheMostAnyLiveSubscriptionHasYetToBeSent) {
  storage::testing::TempDir dir;
  auto opened = storage::Store::Open(dir.path(), storage::testing::SmallOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto store = std::move(opened).value();
  ASSERT_TRUE(store->AppendSync("a", ExpectedVersion::Any(), MakeEvents("a", 0, 10)).ok());
  ASSERT_TRUE(store->AppendSync("b", ExpectedVersion::Any(), MakeEvents("b", 0, 4)).ok());

  SubscriptionCursors cursors;
  EXPECT_EQ(cursors.MaxLag(*store), 0u) << "none live";
  std::atomic<uint64_t> all_at{14}, b_at{1}, missing_at{0};
  int all = 0, b = 0, missing = 0;
  cursors.Register(&all, &all_at);
  cursors.Register(&b, "b", &b_at);
  cursors.Register(&missing, "no-such-stream", &missing_at);
  EXPECT_EQ(cursors.MaxLag(*store), 3u) << "stream b has versions 1..3 to send; $all is caught up";
  all_at = 2;
  EXPECT_EQ(cursors.MaxLag(*store), 12u);
  cursors.Unregister(&all);
  EXPECT_EQ(cursors.MaxLag(*store), 3u) << "a subscription that ended no longer counts";
  b_at = 4;
  EXPECT_EQ(cursors.MaxLag(*store), 0u);
}

}  // namespace
}  // namespace esd::server
