// Verify and backup over the log and its snapshots: a damaged snapshot is a named note;
// a backup holds the snapshots and the log, opens as it is, and never goes into a directory
// that holds something.
#include "domain/maintenance.h"

#include <gtest/gtest.h>

#include <fstream>

#include "domain/order_commands.h"
#include "domain/projections.h"
#include "domain/snapshots.h"
#include "storage/test_util.h"

namespace esd::domain {
namespace {

using storage::testing::TempDir;

class MaintenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() / "data";
    store_ = storage::Store::Open(data_, storage::testing::SmallOptions()).value();
    OrderCommands orders(*store_);
    for (int i = 0; i < 40; ++i) {
      std::string id = "m";  // not "m" + ...: g++ 12's -Wrestrict false positive (GCC bug 105329)
      id += std::to_string(i);
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(orders.Execute(CreateOrder{id, "c"}, {id, "", ""})));
    }
    ASSERT_TRUE(OrderSnapshots(data_).Save(*store_, "order-m1", orders.Load("m1").value()).ok());
    OrderProjection projection;
    ASSERT_TRUE(projection.CatchUp(*store_).ok());
    ASSERT_TRUE(projection.SaveSnapshot(*store_, ProjectionSnapshotPath(data_)).ok());
  }
  TempDir dir_;
  std::filesystem::path data_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(MaintenanceTest, ACleanStoreVerifiesWithEverySnapshotCounted) {
  uint64_t done = 0, total = 1;
  auto v = VerifyWithSnapshots(data_, [&](uint64_t d, uint64_t t) { done = d, total = t; });
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->report.ok());
  EXPECT_EQ(v->report.events, 40u);
  EXPECT_EQ(v->snapshots, 2u);
  EXPECT_EQ(done, total);
}

TEST_F(MaintenanceTest, ADamagedSnapshotIsANoteThatNamesItsFile) {
  // Open ignores it and rebuilds from the log: a repair, so a note, not damage.
  const auto snap = OrderSnapshots(data_).PathOf("order-m1");
  storage::testing::FlipByte(snap, std::filesystem::file_size(snap) - 2);
  auto v = VerifyWithSnapshots(data_);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->report.ok());
  ASSERT_EQ(v->report.notes.size(), 1u);
  EXPECT_EQ(v->report.notes[0].rfind(std::filesystem::relative(snap, data_).string() + ": snapshot does not verify", 0),
            0u)
      << v->report.notes[0];
}

TEST_F(MaintenanceTest, WithTheOpenStoreASnapshotAheadOfTheLogIsANoteThatSaysSo) {
  auto clean = VerifyWithSnapshots(data_, {}, store_.get());
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->report.ok()) << "the snapshots taken hold against the log";
  // The projection's snapshot of a longer log, e.g. one whose end was salvaged away.
  ASSERT_TRUE(WriteSnapshotFile(ProjectionSnapshotPath(data_), 1000, EncodeProjection(1000, 1, {})).ok());
  auto v = VerifyWithSnapshots(data_, {}, store_.get());
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->report.ok());
  ASSERT_EQ(v->report.notes.size(), 1u);
  EXPECT_EQ(v->report.notes[0].rfind("snapshots/projections/orders.snap: ", 0), 0u) << v->report.notes[0];
  EXPECT_NE(v->report.notes[0].find("ahead of the log"), std::string::npos) << v->report.notes[0];
}

TEST_F(MaintenanceTest, ABackupHoldsTheLogAndTheSnapshotsAndOpensAsItIs) {
  const auto dest = dir_.path() / "copy";
  uint64_t bytes = 0, last_done = 0;
  bool marked = true;
  auto upto = BackupWithSnapshots(*store_, data_, dest, [&](uint64_t d, uint64_t) {
    last_done = d;
    marked = marked && std::filesystem::exists(dest / storage::kBackupInProgressFile);
  }, &bytes);
  ASSERT_TRUE(upto.ok()) << upto.status().ToString();
  EXPECT_TRUE(marked) << "unfinished while the log is copied (the snapshots are already in)";
  EXPECT_FALSE(std::filesystem::exists(dest / storage::kBackupInProgressFile));
  EXPECT_EQ(upto->value, 40u);
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(last_done, bytes);
  auto copied = ListSnapshots(dest);
  ASSERT_EQ(copied.size(), 2u);
  EXPECT_TRUE(copied[0].ok && copied[1].ok);
  auto v = VerifyWithSnapshots(dest);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->report.ok());
  auto reopened = storage::Store::Open(dest, storage::testing::SmallOptions());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->DurablePosition().value, 40u);
  EXPECT_EQ(OrderCommands(**reopened).Load("m39")->customer_id, "c");
}

TEST_F(MaintenanceTest, ABackupMakesTheDirectoriesItNeedsAndTakesATrailingSlash) {
  const auto dest = dir_.path() / "new" / "nested" / "copy";
  auto upto = BackupWithSnapshots(*store_, data_, dest.string() + "/");
  ASSERT_TRUE(upto.ok()) << upto.status().ToString();
  auto reopened = storage::Store::Open(dest, storage::testing::SmallOptions());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->DurablePosition().value, 40u);
}

TEST_F(MaintenanceTest, ABackupIntoADirectoryThatHoldsSomethingWritesNothing) {
  const auto dest = dir_.path() / "busy";
  std::filesystem::create_directories(dest);
  std::ofstream(dest / "notes.txt") << "not a store";
  auto upto = BackupWithSnapshots(*store_, data_, dest);
  ASSERT_FALSE(upto.ok());
  EXPECT_EQ(upto.status().code(), storage::Status::Code::kInvalidArgument);
  EXPECT_NE(upto.status().message().find("must be new or empty"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dest / "segments"));
  EXPECT_FALSE(std::filesystem::exists(dest / "snapshots"));
}

}  // namespace
}  // namespace esd::domain
