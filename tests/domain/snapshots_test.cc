// Aggregate snapshots: loading costs the events since the snapshot; a damaged snapshot or
// one of another format is ignored (and later rebuilt), never misread.
#include "domain/snapshots.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
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
    // What a load takes from snapshots, not from orders kept loaded (OrderCache): a load
    // after the commands of the same OrderCommands would read nothing.
    options_.cached_orders = 0;
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
    std::filesystem::path snap = OrderSnapshots(store_->directory()).PathOf("order-s1");
    std::filesystem::path aside = snap.string() + ".aside";
    std::filesystem::rename(snap, aside);
    OrderCommands::LoadStats stats;
    auto state = OrderCommands(*store_, none).Load("s1", &stats);
    std::filesystem::rename(aside, snap);
    EXPECT_FALSE(stats.snapshot_version.has_value());
    return state.value();
  }

  void Add(OrderCommands& orders, const std::string& sku, const std::string& command_id) {
    auto o = orders.Execute(AddItem{"s1", sku, 1, 100}, {command_id, "", ""});
    ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(o));
  }
  // Closes the store, copies its files to `to` as they are now, and opens it again.
  void CopyStoreTo(const std::filesystem::path& to) {
    store_.reset();
    std::filesystem::copy(dir_.path(), to, std::filesystem::copy_options::recursive);
    store_ = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
  }
  // The log lost its end: `older` (a copy made before the last events) becomes the store,
  // with the snapshots taken since copied in, as after a power loss or a salvage.
  void LoseTheEndOfTheLog(const std::filesystem::path& older) {
    store_.reset();
    std::filesystem::copy(dir_.path() / "snapshots", older / "snapshots",
                          std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
    store_ = storage::Store::Open(older, storage::testing::SmallOptions()).value();
  }

  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  OrderCommands::Options options_;
};

TEST_F(SnapshotsTest, ASnapshotCoversOnlyEventsOnDisk) {
  store_.reset();
  storage::Options never = storage::testing::SmallOptions();
  never.durability.mode = storage::Durability::kNever;
  store_ = storage::Store::Open(dir_.path(), never).value();
  OrderCommands orders(*store_, options_);
  Fill(orders, 59);  // 60 events: the policy snapshots at version 49
  const auto snap = OrderSnapshots(dir_.path()).Load("order-s1");
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->version, 49u);
  EXPECT_GT(store_->SyncedPosition().value, snap->last_position)
      << "a snapshot on disk of events that are not would outlive them at a power loss";
}

TEST_F(SnapshotsTest, ASnapshotAheadOfTheLogIsIgnored) {
  TempDir older_dir;
  const auto older = older_dir.path() / "data";
  OrderCommands orders(*store_, options_);
  Fill(orders, 54);  // 55 events, snapshot at version 49
  CopyStoreTo(older);
  {
    OrderCommands later(*store_, options_);
    for (int i = 0; i < 50; ++i) Add(later, "lost", "lost-" + std::to_string(i));  // 105 events: snapshot at 99
  }
  LoseTheEndOfTheLog(older);  // 55 events, and the snapshot of version 99
  OrderCommands reopened(*store_, options_);
  OrderCommands::LoadStats stats;
  auto state = reopened.Load("s1", &stats);
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(stats.snapshot_version.has_value());
  EXPECT_EQ(stats.events_read, 55u);
  EXPECT_EQ(state->version, 54u);
  EXPECT_EQ(*state, FullReplay());
  EXPECT_NE(stats.snapshot_ignored.find("version 99"), std::string::npos) << stats.snapshot_ignored;
  // Decided against version 54, and the lost line is not there.
  EXPECT_EQ(std::get<Rejection>(reopened.Execute(RemoveItem{"s1", "lost", 1}, {"rm", "", ""})).rule,
            "item-not-in-order");
  auto placed = reopened.Execute(PlaceOrder{"s1"}, {"place", "", ""});
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(placed));
  EXPECT_EQ(std::get<OrderCommands::Accepted>(placed).first_version, 55u);
}

TEST_F(SnapshotsTest, ASnapshotOfEventsTheLogLostIsIgnoredOnceTheLogHasGrownPastIt) {
  TempDir older_dir;
  const auto older = older_dir.path() / "data";
  OrderCommands orders(*store_, options_);
  Fill(orders, 54);  // 55 events, snapshot at version 49
  CopyStoreTo(older);
  {
    OrderCommands later(*store_, options_);
    for (int i = 0; i < 50; ++i) Add(later, "lost", "lost-" + std::to_string(i));  // snapshot at 99
  }
  LoseTheEndOfTheLog(older);
  {
    // Other commands fill the same versions again before the order is next loaded with
    // snapshots (here: a writer that takes none, so the planted one stays).
    OrderCommands::Options none;
    none.snapshot_every = 0;
    OrderCommands writer(*store_, none);
    for (int i = 0; i < 60; ++i) Add(writer, "again", "again-" + std::to_string(i));  // 115 events
  }
  OrderCommands reopened(*store_, options_);
  OrderCommands::LoadStats stats;
  auto state = reopened.Load("s1", &stats);
  ASSERT_TRUE(state.ok());
  EXPECT_NE(stats.snapshot_version, std::optional<uint64_t>(99)) << "version 99 of this log is another event";
  EXPECT_EQ(state->version, 114u);
  EXPECT_EQ(*state, FullReplay());
  EXPECT_FALSE(stats.snapshot_ignored.empty());
  EXPECT_EQ(std::get<Rejection>(reopened.Execute(RemoveItem{"s1", "lost", 1}, {"rm", "", ""})).rule,
            "item-not-in-order");
}

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
  ASSERT_TRUE(snaps.Save(*store_, "order-s1", state).ok());
  auto loaded = snaps.Load("order-s1");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, state);
  EXPECT_FALSE(snaps.Load("order-other").has_value());
}

TEST_F(SnapshotsTest, ASnapshotKeepsTheFingerprintOfEachRecentCommand) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 59);  // 60 events, snapshot at version 49: add-17 .. add-48 among its recent commands
  const auto snap = OrderSnapshots(dir_.path()).Load("order-s1");
  ASSERT_TRUE(snap.has_value());
  ASSERT_EQ(snap->recent_commands.size(), OrderState::kRecentCommands);
  for (const AppliedCommand& c : snap->recent_commands) EXPECT_NE(c.fingerprint, 0u) << c.command_id;
  // add-30 is known from the snapshot only: a retry of it is judged by what it was.
  auto same = orders.Execute(AddItem{"s1", "sku-2", 1, 102}, {"add-30", "", ""});
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(same));
  EXPECT_TRUE(std::get<OrderCommands::Accepted>(same).already_applied);
  auto other = orders.Execute(AddItem{"s1", "other", 1, 1}, {"add-30", "", ""});
  ASSERT_TRUE(std::holds_alternative<storage::Status>(other));
  EXPECT_EQ(std::get<storage::Status>(other).code(), storage::Status::Code::kIdempotencyConflict);
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
  ASSERT_TRUE(OrderSnapshots(dir_.path()).Save(*store_, "order-s1", future).ok());
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
  ASSERT_TRUE(OrderSnapshots(dir_.path()).Save(*store_, "order-s1", planted).ok());
  OrderCommands::LoadStats stats;
  auto state = orders.Load("s1", &stats);
  EXPECT_FALSE(stats.snapshot_version.has_value());
  EXPECT_NE(state->total_cents, 999999);
}

TEST_F(SnapshotsTest, JudgedAgainstTheLogASnapshotAheadOfItDoesNotVerify) {
  TempDir older_dir;
  const auto older = older_dir.path() / "data";
  OrderCommands orders(*store_, options_);
  Fill(orders, 54);
  CopyStoreTo(older);
  {
    OrderCommands later(*store_, options_);
    for (int i = 0; i < 50; ++i) Add(later, "lost", "lost-" + std::to_string(i));  // snapshot at 99
  }
  LoseTheEndOfTheLog(older);
  const auto path = OrderSnapshots(older).PathOf("order-s1");
  EXPECT_TRUE(InspectSnapshot(older, path).ok) << "the file on its own holds";
  const SnapshotEntry judged = InspectSnapshot(older, path, store_.get());
  EXPECT_FALSE(judged.ok) << "it would not be loaded";
  EXPECT_EQ(judged.name, "order-s1");
  EXPECT_EQ(judged.version, 99u);
  EXPECT_NE(judged.problem.find("ahead of the log"), std::string::npos) << judged.problem;
  const auto listed = ListSnapshots(older, "", SIZE_MAX, store_.get());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].problem, judged.problem);
}

// A state for listing tests: order `id` at version `version`.
OrderState StateOf(const std::string& id, uint64_t version) {
  OrderState s;
  s.order_id = id;
  s.customer_id = "c";
  s.status = OrderStatus::kOpen;
  s.version = version;
  return s;
}

// Writes the snapshot file of a state no log is behind (Save would refuse it).
storage::Status Plant(const OrderSnapshots& snaps, const std::string& stream, const OrderState& s) {
  return WriteSnapshotFile(snaps.PathOf(stream), *s.version, EncodeOrderSnapshot(s));
}

TEST_F(SnapshotsTest, ListingNamesEachSnapshotWithWhatItCovers) {
  const OrderSnapshots snaps(dir_.path());
  ASSERT_TRUE(Plant(snaps, "order-a", StateOf("a", 3)).ok());
  const OrderState b = StateOf("b", 7);
  ASSERT_TRUE(WriteSnapshotFile(ProjectionSnapshotPath(dir_.path()), 12, EncodeProjection(12, 0, {&b})).ok());
  const auto list = ListSnapshots(dir_.path());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].file, std::filesystem::relative(snaps.PathOf("order-a"), dir_.path()).string());
  EXPECT_TRUE(list[0].ok);
  EXPECT_EQ(list[0].kind, SnapshotEntry::Kind::kOrder);
  EXPECT_EQ(list[0].name, "order-a");
  EXPECT_EQ(list[0].version, 3u);
  EXPECT_EQ(list[0].bytes, std::filesystem::file_size(snaps.PathOf("order-a")));
  EXPECT_EQ(list[1].file, "snapshots/projections/orders.snap");
  EXPECT_TRUE(list[1].ok);
  EXPECT_EQ(list[1].kind, SnapshotEntry::Kind::kProjection);
  EXPECT_EQ(list[1].version, 12u);
  EXPECT_EQ(list[1].orders, 1u);
}

TEST_F(SnapshotsTest, ListingPagesAfterAFileNameInNameOrder) {
  const OrderSnapshots snaps(dir_.path());
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(Plant(snaps, OrderStream(std::to_string(i)), StateOf(std::to_string(i), 1)).ok());
  std::vector<std::string> paged;
  std::string after;
  while (true) {
    const auto page = ListSnapshots(dir_.path(), after, 10);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 10u);
    for (const auto& e : page) paged.push_back(e.file);
    after = page.back().file;
  }
  std::vector<std::string> all;
  for (const auto& e : ListSnapshots(dir_.path())) all.push_back(e.file);
  EXPECT_EQ(all.size(), 25u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  EXPECT_EQ(paged, all);
}

TEST_F(SnapshotsTest, ASnapshotInAnotherStreamsFileOrDamagedIsListedAsNotOk) {
  const OrderSnapshots snaps(dir_.path());
  ASSERT_TRUE(Plant(snaps, "order-a", StateOf("a", 3)).ok());
  ASSERT_TRUE(Plant(snaps, "order-b", StateOf("b", 3)).ok());
  // a's snapshot copied over b's: its checksums hold, but Load("order-b") would refuse it.
  std::filesystem::copy_file(snaps.PathOf("order-a"), snaps.PathOf("order-b"),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(InspectSnapshot(dir_.path(), snaps.PathOf("order-b")).ok);
  EXPECT_TRUE(InspectSnapshot(dir_.path(), snaps.PathOf("order-a")).ok);
  storage::testing::FlipByte(snaps.PathOf("order-a"), 60);
  const SnapshotEntry damaged = InspectSnapshot(dir_.path(), snaps.PathOf("order-a"));
  EXPECT_FALSE(damaged.ok);
  EXPECT_EQ(damaged.kind, SnapshotEntry::Kind::kOrder);
  EXPECT_EQ(damaged.name, "") << "what a damaged file covers is not known";
}

TEST_F(SnapshotsTest, ParsingBytesInMemoryChecksWhatReadingAFileChecks) {
  const OrderSnapshots snaps(dir_.path());
  ASSERT_TRUE(Plant(snaps, "order-a", StateOf("a", 3)).ok());
  const auto raw = storage::testing::ReadFileBytes(snaps.PathOf("order-a"));
  std::string bytes(raw.begin(), raw.end());
  const auto parsed = ParseSnapshotFile(bytes);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->version, 3u);
  EXPECT_EQ(DecodeOrderSnapshot(parsed->body)->order_id, "a");
  EXPECT_FALSE(ParseSnapshotFile(bytes.substr(0, bytes.size() - 8))) << "cut short";
  bytes[bytes.size() - 1] ^= 1;
  EXPECT_FALSE(ParseSnapshotFile(bytes)) << "a flipped bit";
}

}  // namespace
}  // namespace esd::domain

namespace esd::domain {
namespace {

TEST_F(SnapshotsTest, RemoveTakesTheFileAndALeftoverTmpAndMissingOnesAreNoFailure) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 60);  // crosses 50: a snapshot
  const OrderSnapshots snapshots(dir_.path());
  const auto path = snapshots.PathOf("order-s1");
  ASSERT_TRUE(std::filesystem::exists(path));
  std::ofstream(path.string() + ".tmp") << "an interrupted write";
  ASSERT_TRUE(snapshots.Remove("order-s1").ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  EXPECT_TRUE(snapshots.Remove("order-s1").ok());
  EXPECT_TRUE(snapshots.SyncDirectory().ok());
  EXPECT_TRUE(OrderSnapshots(dir_.path() / "elsewhere").SyncDirectory().ok()) << "no directory: nothing to sync";
}

TEST_F(SnapshotsTest, AStreamWithMetadataGetsNoSnapshot) {
  OrderCommands orders(*store_, options_);
  Fill(orders, 3);
  const OrderState state = orders.Load("s1").value();
  ASSERT_TRUE(store_->DeleteStreamSync("order-s1", storage::ExpectedVersion::Any(), true).ok());
  const storage::Status saved = OrderSnapshots(dir_.path()).Save(*store_, "order-s1", state);
  EXPECT_EQ(saved.code(), storage::Status::Code::kInvalidArgument);
  EXPECT_NE(saved.message().find("has metadata"), std::string::npos) << saved.message();
  EXPECT_FALSE(std::filesystem::exists(OrderSnapshots(dir_.path()).PathOf("order-s1")));
}

}  // namespace
}  // namespace esd::domain
