// Aggregate snapshots: loading costs the events since the snapshot; a damaged snapshot or
// one of another format is ignored (and later rebuilt), never misread.
#include "domain/snapshots.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>
#include <fstream>

#include "domain/order_commands.h"
#include "storage/test_util.h"

namespace esd::domain {
namespace {

using storage::testing::TempDir;

class SnapshotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
    options_.snapshot_every = 50;
  }
  // CreateOrder plus `adds` AddItem commands: 1 + adds events.
  void Fill(OrderCommands& orders, int adds, int first = 0) {
    if (first == 0) {
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(
          orders.Execute(CreateOrder{"s1", "c"}, {"create", "", ""})));
    }
    for (int i = first; i < first + adds; ++i) {
      auto o = orders.Execute(AddItem{"s1", "sku-" + std::to_string(i % 7), 1, 100 + i % 7},
                              {"add-" + std::to_string(i), "", ""});
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(o));
    }
  }
  OrderState FullReplay() {
    OrderCommands::Options none;
    none.snapshot_every = 0;
    std::filesystem::path snap = OrderSnapshots(dir_.path()).PathOf("order-s1");
    std::filesystem::path aside = snap.string() + ".aside";
    std::filesystem::rename(snap, aside);
    OrderCommands::LoadStats stats;
    auto state = OrderCommands(*store_, none).Load("s1", &stats);
    std::filesystem::rename(aside, snap);
    EXPECT_FALSE(stats.snapshot_version.has_value());
    return state.value();
  }

  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  OrderCommands::Options options_;
};

TEST_F(SnapshotsTest, LoadingReadsOnlyTheEventsSinceTheSnapshot) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 119);  // 120 events: snapshots after 50 and 100
  OrderCommands::LoadStats stats;
  auto state = orders.Load("s1", &stats);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(stats.snapshot_version, 99u);
  EXPECT_EQ(stats.events_read, 20u) << "O(events since the snapshot), not O(all events)";
  EXPECT_EQ(*state, FullReplay()) << "snapshot + tail equals the fold of every event";
}

TEST_F(SnapshotsTest, SaveThenLoadGivesTheSameState) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 10);
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(orders.Execute(PlaceOrder{"s1"}, {"place", "", ""})));
  auto state = orders.Load("s1").value();
  OrderSnapshots snaps(dir_.path());
  ASSERT_TRUE(snaps.Save("order-s1", state).ok());
  auto loaded = snaps.Load("order-s1");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, state);
  EXPECT_FALSE(snaps.Load("order-other").has_value());
}

TEST_F(SnapshotsTest, ADamagedSnapshotIsIgnoredAndTheNextOneReplacesIt) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 59);  // 60 events, snapshot at version 49
  const auto path = OrderSnapshots(dir_.path()).PathOf("order-s1");
  storage::testing::FlipByte(path, std::filesystem::file_size(path) - 20);
  OrderCommands::LoadStats stats;
  auto state = orders.Load("s1", &stats);
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(stats.snapshot_version.has_value());
  EXPECT_EQ(stats.events_read, 60u);
  EXPECT_EQ(*state, FullReplay());
  Fill(orders, 40, 59);  // crosses 100 events: a fresh snapshot
  ASSERT_TRUE(orders.Load("s1", &stats).ok());
  EXPECT_EQ(stats.snapshot_version, 99u);
}

TEST_F(SnapshotsTest, ASnapshotOfAnotherFormatVersionIsIgnored) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 59);
  const auto path = OrderSnapshots(dir_.path()).PathOf("order-s1");
  auto bytes = storage::testing::ReadFileBytes(path);
  const uint32_t other = kSnapshotFormatVersion + 1;
  std::memcpy(bytes.data() + 8, &other, 4);
  const uint64_t header_sum = XXH3_64bits(bytes.data(), 40);  // a well-formed header of format 2
  std::memcpy(bytes.data() + 40, &header_sum, 8);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  OrderCommands::LoadStats stats;
  ASSERT_TRUE(orders.Load("s1", &stats).ok());
  EXPECT_FALSE(stats.snapshot_version.has_value()) << "another format is never misread";
  EXPECT_EQ(stats.events_read, 60u);
}

TEST_F(SnapshotsTest, ASnapshotAheadOfTheStreamIsNotUsed) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 59);  // 60 events: enough that a snapshot is looked for
  OrderState future = orders.Load("s1").value();
  future.version = 500;
  future.total_cents = 999999;
  ASSERT_TRUE(OrderSnapshots(dir_.path()).Save("order-s1", future).ok());
  OrderCommands::LoadStats stats;
  auto state = orders.Load("s1", &stats);
  EXPECT_FALSE(stats.snapshot_version.has_value()) << "e.g. a store restored from an older backup";
  EXPECT_EQ(stats.events_read, 60u);
  EXPECT_NE(state->total_cents, 999999);
}

TEST_F(SnapshotsTest, AnOrderTooShortForASnapshotDoesNotLookForOne) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 9);  // 10 events
  OrderState planted = orders.Load("s1").value();
  planted.total_cents = 999999;  // a file that should never be read for such a short order
  ASSERT_TRUE(OrderSnapshots(dir_.path()).Save("order-s1", planted).ok());
  OrderCommands::LoadStats stats;
  auto state = orders.Load("s1", &stats);
  EXPECT_FALSE(stats.snapshot_version.has_value());
  EXPECT_NE(state->total_cents, 999999);
}

}  // namespace
}  // namespace esd::domain
