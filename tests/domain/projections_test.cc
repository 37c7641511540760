// The Order projections: a rebuild equals the incrementally built state, a restart from a
// snapshot plus catch-up equals an uninterrupted run, and ListOrders pages every order once.
#include "domain/projections.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <set>

#include "domain/codec.h"
#include "domain/many_orders.h"
#include "domain/order_commands.h"
#include "storage/test_util.h"

namespace esd::domain {
namespace {

class ProjectionsTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value(); }

  // A deterministic mix of commands over `orders` orders of 3 customers; rejections too.
  void Run(int commands, int orders, uint32_t seed, OrderProjection* incremental = nullptr) {
    OrderCommands exec(*store_);
    std::mt19937 rng(seed);
    for (int i = 0; i < commands; ++i) {
      const std::string id = "p" + std::to_string(rng() % orders);
      OrderCommand cmd;
      switch (rng() % 6) {
        case 0: cmd = CreateOrder{id, "cust-" + std::to_string(rng() % 3)}; break;
        case 1:
        case 2: cmd = AddItem{id, "sku-" + std::to_string(rng() % 4), static_cast<uint32_t>(1 + rng() % 3), 100}; break;
        case 3: cmd = RemoveItem{id, "sku-" + std::to_string(rng() % 4), 1}; break;
        case 4: cmd = PlaceOrder{id}; break;
        default: cmd = CancelOrder{id, "r"}; break;
      }
      auto outcome = exec.Execute(cmd, {"c-" + std::to_string(seed) + "-" + std::to_string(i), "", ""});
      ASSERT_FALSE(std::holds_alternative<storage::Status>(outcome));
      if (incremental != nullptr) {
        ASSERT_TRUE(incremental->CatchUp(*store_).ok());
      }
      // Other streams share $all: the projection must skip them.
      if (i % 10 == 0) {
        storage::EventData other;
        other.id = storage::EventId::Random();
        other.type = "Unrelated";
        ASSERT_TRUE(store_->AppendSync("audit-log", storage::ExpectedVersion::Any(), {other}).ok());
      }
    }
  }

  // Closes the store, copies its files to `to` as they are now, and opens it again.
  void CopyStoreTo(const std::filesystem::path& to) {
    store_.reset();
    std::filesystem::copy(dir_.path(), to, std::filesystem::copy_options::recursive);
    store_ = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
  }
  // The log lost its end: `older` (a copy made before the last events) becomes the store,
  // with the projection's snapshot taken since copied in, as after a power loss or a salvage.
  void LoseTheEndOfTheLog(const std::filesystem::path& older) {
    store_.reset();
    std::filesystem::create_directories(ProjectionSnapshotPath(older).parent_path());
    std::filesystem::copy_file(ProjectionSnapshotPath(dir_.path()), ProjectionSnapshotPath(older),
                               std::filesystem::copy_options::overwrite_existing);
    store_ = storage::Store::Open(older, storage::testing::SmallOptions()).value();
  }
  OrderProjection Rebuilt() {
    OrderProjection p;
    EXPECT_TRUE(p.CatchUp(*store_).ok());
    return p;
  }

  storage::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(ProjectionsTest, ASnapshotCoversOnlyEventsOnDisk) {
  store_.reset();
  storage::Options never = storage::testing::SmallOptions();
  never.durability.mode = storage::Durability::kNever;
  store_ = storage::Store::Open(dir_.path(), never).value();
  Run(60, 10, 8);
  OrderProjection p = Rebuilt();
  ASSERT_LT(store_->SyncedPosition().value, p.checkpoint()) << "kNever: not synced yet";
  ASSERT_TRUE(p.SaveSnapshot(*store_, ProjectionSnapshotPath(dir_.path())).ok());
  EXPECT_GE(store_->SyncedPosition().value, p.checkpoint())
      << "a snapshot on disk of events that are not would outlive them at a power loss";
}

TEST_F(ProjectionsTest, ASnapshotAheadOfTheLogIsIgnored) {
  storage::testing::TempDir older_dir;
  const auto older = older_dir.path() / "data";
  Run(60, 10, 6);
  CopyStoreTo(older);
  Run(60, 10, 7);
  ASSERT_TRUE(Rebuilt().SaveSnapshot(*store_, ProjectionSnapshotPath(dir_.path())).ok());
  LoseTheEndOfTheLog(older);
  std::string why;
  OrderProjection loaded = OrderProjection::LoadSnapshot(*store_, ProjectionSnapshotPath(older), &why);
  EXPECT_EQ(loaded.checkpoint(), 0u) << "caught up from 0";
  EXPECT_NE(why.find("ahead of the log"), std::string::npos) << why;
  ASSERT_TRUE(loaded.CatchUp(*store_).ok());
  EXPECT_TRUE(loaded == Rebuilt());
}

TEST_F(ProjectionsTest, ASnapshotOfEventsTheLogLostIsIgnoredOnceTheLogHasGrownPastIt) {
  storage::testing::TempDir older_dir;
  const auto older = older_dir.path() / "data";
  Run(60, 10, 6);
  CopyStoreTo(older);
  Run(60, 10, 7);
  const OrderProjection before_the_loss = Rebuilt();
  ASSERT_TRUE(before_the_loss.SaveSnapshot(*store_, ProjectionSnapshotPath(dir_.path())).ok());
  LoseTheEndOfTheLog(older);
  Run(200, 10, 9);  // other events take the lost positions and more
  ASSERT_GT(store_->DurablePosition().value, before_the_loss.checkpoint());
  std::string why;
  OrderProjection loaded = OrderProjection::LoadSnapshot(*store_, ProjectionSnapshotPath(older), &why);
  EXPECT_EQ(loaded.checkpoint(), 0u) << "its checkpoint is within the log, but of another history";
  EXPECT_NE(why.find("grew again"), std::string::npos) << why;
  ASSERT_TRUE(loaded.CatchUp(*store_).ok());
  EXPECT_TRUE(loaded == Rebuilt());
}

TEST_F(ProjectionsTest, ARebuildFromZeroEqualsTheIncrementallyBuiltState) {
  OrderProjection incremental;
  Run(300, 25, 1, &incremental);
  OrderProjection rebuilt;
  ASSERT_TRUE(rebuilt.CatchUp(*store_).ok());
  EXPECT_EQ(rebuilt.checkpoint(), store_->DurablePosition().value);
  EXPECT_GT(rebuilt.order_count(), 0u);
  EXPECT_TRUE(rebuilt == incremental);
  EXPECT_EQ(rebuilt.skipped_events(), 0u);
}

TEST_F(ProjectionsTest, RestartFromASnapshotAndCatchUpEqualsAnUninterruptedRun) {
  OrderProjection uninterrupted;
  Run(150, 20, 2, &uninterrupted);
  const auto path = dir_.path() / "snapshots" / "projections" / "orders.snap";
  ASSERT_TRUE(uninterrupted.SaveSnapshot(*store_, path).ok());
  Run(150, 20, 3, &uninterrupted);  // the daemon was down for these
  OrderProjection restarted = OrderProjection::LoadSnapshot(*store_, path);
  EXPECT_LT(restarted.checkpoint(), uninterrupted.checkpoint());
  EXPECT_GT(restarted.checkpoint(), 0u);
  auto read = restarted.CatchUp(*store_);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, uninterrupted.checkpoint() - OrderProjection::LoadSnapshot(*store_, path).checkpoint())
      << "a restart reads only what came after the checkpoint";
  EXPECT_TRUE(restarted == uninterrupted);
}

// The daemon captures on its event loop and encodes elsewhere, while the loop goes on
// applying events: what it encodes must be the projection as it was at the capture.
TEST_F(ProjectionsTest, ACaptureKeepsTheProjectionAsItWasWhateverIsAppliedAfterIt) {
  OrderProjection live;
  Run(150, 20, 11, &live);
  const OrderProjection::EncodedSnapshot then = live.EncodeSnapshot();
  const OrderProjection::CapturedSnapshot captured = live.CaptureSnapshot();
  ASSERT_GT(captured.orders.size(), 5u);
  Run(150, 20, 12, &live);  // changes the captured orders and makes new ones
  const std::string dropped = captured.orders.front()->order_id;
  ASSERT_TRUE(live.Drop(dropped));
  ASSERT_GT(live.checkpoint(), captured.checkpoint);

  const OrderProjection::EncodedSnapshot encoded = OrderProjection::EncodeCaptured(captured);
  EXPECT_EQ(encoded.checkpoint, then.checkpoint);
  EXPECT_TRUE(encoded.body == then.body) << "the capture saw events applied after it";
  // And the live projection is the one the later events made, as a rebuild is (but for the
  // order dropped by hand, which a rebuild from the log still holds).
  EXPECT_EQ(live.Get(dropped), nullptr);
  OrderProjection rebuilt = Rebuilt();
  ASSERT_TRUE(rebuilt.Drop(dropped));
  EXPECT_TRUE(live == rebuilt);
  EXPECT_FALSE(live.EncodeSnapshot().body == then.body);
}

// The daemon may replace its projection (a rebuild takes over) or stop while a capture is
// being encoded on another thread: the capture then owns what it saw.
TEST_F(ProjectionsTest, ACaptureOutlivesItsProjection) {
  auto live = std::make_unique<OrderProjection>();
  Run(120, 20, 13, live.get());
  const OrderProjection::EncodedSnapshot then = live->EncodeSnapshot();
  const OrderProjection::CapturedSnapshot captured = live->CaptureSnapshot();
  const size_t orders = live->order_count();
  ASSERT_GT(orders, 5u);
  EXPECT_TRUE(captured.kept->states.empty()) << "nothing changed yet: nothing to keep";

  *live = Rebuilt();  // assigned over: its old orders go to the capture
  EXPECT_EQ(captured.kept->states.size(), orders);
  live.reset();
  EXPECT_EQ(captured.kept->states.size(), orders) << "the rebuilt one's orders were not in the capture";
  EXPECT_TRUE(OrderProjection::EncodeCaptured(captured).body == then.body);
}

TEST_F(ProjectionsTest, ADamagedSnapshotMeansARebuildNotAWrongState) {
  OrderProjection p;
  Run(60, 10, 4, &p);
  const auto path = dir_.path() / "proj.snap";
  ASSERT_TRUE(p.SaveSnapshot(*store_, path).ok());
  storage::testing::FlipByte(path, std::filesystem::file_size(path) - 9);
  OrderProjection loaded = OrderProjection::LoadSnapshot(*store_, path);
  EXPECT_EQ(loaded.checkpoint(), 0u);
  EXPECT_EQ(loaded.order_count(), 0u);
  ASSERT_TRUE(loaded.CatchUp(*store_).ok());
  EXPECT_TRUE(loaded == p);
}

TEST_F(ProjectionsTest, ASnapshotPastCapnpsDefaultReadLimitLoads) {
  // capnp reads at most 64 MiB of a message unless told otherwise; past ~110,000 orders the
  // daemon's snapshot did not load, and every restart replayed $all from 0.
  storage::EventData e;
  e.id = storage::EventId::Random();
  e.type = "Unrelated";
  ASSERT_TRUE(store_->AppendSync("audit-log", storage::ExpectedVersion::Any(), {e}).ok());
  const std::vector<OrderState> orders = testing::ManyOrders(150'000);
  const auto path = ProjectionSnapshotPath(dir_.path());
  ASSERT_TRUE(testing::WriteProjectionSnapshotOf(*store_, orders, path).ok());
  ASSERT_GT(std::filesystem::file_size(path), 64u << 20);
  std::string why = "?";
  const OrderProjection loaded = OrderProjection::LoadSnapshot(*store_, path, &why);
  EXPECT_EQ(why, "");
  EXPECT_EQ(loaded.checkpoint(), 1u);
  ASSERT_EQ(loaded.order_count(), orders.size());
  ASSERT_NE(loaded.Get("m149999"), nullptr);
  EXPECT_EQ(*loaded.Get("m149999"), orders.back());
  EXPECT_EQ(loaded.List("customer-999", std::nullopt, 1000, "")->orders.size(), 150u);
}

TEST_F(ProjectionsTest, ASnapshotTakenPastOtherStreamsEventsIsUsedAtTheNextStart) {
  // The projection passes other streams' batches unread; its checkpoint then lies past
  // events it never applied, and the snapshot's check at load compares the commit time of
  // the event just below the checkpoint.
  OrderProjection p;
  Run(40, 5, 6, &p);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(store_->AppendSync("audit-log", storage::ExpectedVersion::Any(),
                                   storage::testing::MakeEvents("audit-log", i * 3, 3)).ok());
  }
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  EXPECT_EQ(p.checkpoint(), store_->DurablePosition().value) << "it passed the last events, of another stream";
  const auto path = ProjectionSnapshotPath(dir_.path());
  ASSERT_TRUE(p.SaveSnapshot(*store_, path).ok());
  std::string why;
  OrderProjection loaded = OrderProjection::LoadSnapshot(*store_, path, &why);
  EXPECT_EQ(why, "");
  EXPECT_EQ(loaded.checkpoint(), p.checkpoint());
  EXPECT_TRUE(loaded == Rebuilt());
}

TEST_F(ProjectionsTest, ASnapshotThatCannotBeUsedSaysWhy) {
  OrderProjection p;
  Run(60, 10, 4, &p);
  const auto path = ProjectionSnapshotPath(dir_.path());
  std::string why;
  // Checksums that hold over a body that is no message: what a bug in the writer would leave.
  ASSERT_TRUE(WriteSnapshotFile(path, p.checkpoint(), std::string(64, '\xff')).ok());
  EXPECT_EQ(OrderProjection::LoadSnapshot(*store_, path, &why).checkpoint(), 0u);
  EXPECT_NE(why.find("its body does not decode"), std::string::npos) << why;
  ASSERT_TRUE(p.SaveSnapshot(*store_, path).ok());
  storage::testing::FlipByte(path, std::filesystem::file_size(path) - 9);
  OrderProjection::LoadSnapshot(*store_, path, &why);
  EXPECT_NE(why.find("its body is damaged"), std::string::npos) << why;
  storage::testing::TruncateFile(path, std::filesystem::file_size(path) - 8);
  OrderProjection::LoadSnapshot(*store_, path, &why);
  EXPECT_NE(why.find("cut short"), std::string::npos) << why;
  storage::testing::FlipByte(path, 20);
  OrderProjection::LoadSnapshot(*store_, path, &why);
  EXPECT_NE(why.find("its header is damaged"), std::string::npos) << why;
  std::filesystem::remove(path);
  OrderProjection::LoadSnapshot(*store_, path, &why);
  EXPECT_EQ(why, "") << "no snapshot is not a snapshot that failed";
}

TEST_F(ProjectionsTest, GetOrderAgreesWithTheAggregate) {
  OrderProjection p;
  Run(200, 15, 5);
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  OrderCommands exec(*store_);
  for (int i = 0; i < 15; ++i) {
    const std::string id = "p" + std::to_string(i);
    auto state = exec.Load(id).value();
    const OrderState* view = p.Get(id);
    if (state.status == OrderStatus::kNone) {
      EXPECT_EQ(view, nullptr) << id;
    } else {
      ASSERT_NE(view, nullptr) << id;
      EXPECT_TRUE(view->recent_commands.empty()) << id << ": the projection keeps no command ids, only retries need them";
      state.recent_commands.clear();
      EXPECT_EQ(*view, state) << id;
    }
  }
}

TEST_F(ProjectionsTest, ForeignEventsInOrderStreamsAreSkippedCountedAndTheFirstIsNamed) {
  OrderCommands exec(*store_);
  auto created = exec.Execute(CreateOrder{"o1", "alice"}, {"c1", "", ""});
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(created));
  // As `esctl append` wrote them before order-<id> streams were reserved: JSON, and an
  // order event's bytes under another content type.
  const EncodedEvent enc = Encode(OrderCancelled{"x"}, {});
  const std::vector<std::pair<std::string, storage::EventData>> appends = {
      {"order-1", {storage::EventId::Random(), "OrderCreated", "application/json", "", R"({"customer":"c-1"})"}},
      {"cart-1", {storage::EventId::Random(), "OrderCreated", "application/json", "", "{}"}},  // not an order stream
      {"order-o1", {storage::EventId::Random(), enc.type, "application/octet-stream", enc.metadata, enc.data}},
  };
  for (const auto& [stream, e] : appends) {
    ASSERT_TRUE(store_->AppendSync(stream, storage::ExpectedVersion::Any(), {e}).ok());
  }
  OrderProjection p;
  EXPECT_EQ(p.first_skipped(), std::nullopt);
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  EXPECT_EQ(p.skipped_events(), 2u);
  ASSERT_TRUE(p.first_skipped().has_value());
  EXPECT_EQ(p.first_skipped()->stream, "order-1");
  EXPECT_EQ(p.first_skipped()->position, 1u);
  EXPECT_EQ(p.first_skipped()->type, "OrderCreated");
  EXPECT_EQ(p.Get("1"), nullptr) << "no order is made of it";
  ASSERT_NE(p.Get("o1"), nullptr);
  EXPECT_EQ(p.Get("o1")->status, OrderStatus::kOpen) << "the foreign OrderCancelled was not folded in";
  EXPECT_EQ(p.checkpoint(), 4u) << "skipped, not stopped at";
}

TEST_F(ProjectionsTest, ListOrdersPagesEveryOrderOnceNewestFirst) {
  OrderCommands exec(*store_);
  for (int i = 0; i < 23; ++i) {
    const std::string id = "l" + std::to_string(i);
    ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(exec.Execute(CreateOrder{id, "alice"}, {"c" + id, "", ""})));
    if (i % 3 == 0) {
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(exec.Execute(AddItem{id, "x", 1, 1}, {"a" + id, "", ""})));
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(exec.Execute(PlaceOrder{id}, {"p" + id, "", ""})));
    }
  }
  ASSERT_TRUE(exec.Execute(CreateOrder{"b0", "bob"}, {"cb0", "", ""}).index() == 0);
  OrderProjection p;
  ASSERT_TRUE(p.CatchUp(*store_).ok());

  std::vector<const OrderState*> all;
  std::string token;
  int pages = 0;
  do {
    auto page = p.List("alice", std::nullopt, 5, token);
    ASSERT_TRUE(page.has_value());
    ASSERT_LE(page->orders.size(), 5u);
    all.insert(all.end(), page->orders.begin(), page->orders.end());
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 5);
  ASSERT_EQ(all.size(), 23u);
  std::set<std::string> ids;
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_TRUE(ids.insert(all[i]->order_id).second) << "listed twice: " << all[i]->order_id;
    EXPECT_EQ(all[i]->customer_id, "alice");
    if (i > 0) {
      EXPECT_GE(all[i - 1]->created_at, all[i]->created_at) << "newest first";
    }
  }
  auto placed = p.List("alice", OrderStatus::kPlaced, 100, "");
  ASSERT_TRUE(placed.has_value());
  EXPECT_EQ(placed->orders.size(), 8u);  // i = 0, 3, ..., 21
  for (const OrderState* o : placed->orders) EXPECT_EQ(o->status, OrderStatus::kPlaced);
  EXPECT_TRUE(placed->next_page_token.empty());
  EXPECT_EQ(p.List("bob", std::nullopt, 10, "")->orders.size(), 1u);
  EXPECT_TRUE(p.List("nobody", std::nullopt, 10, "")->orders.empty());
  EXPECT_FALSE(p.List("alice", std::nullopt, 10, "not-a-token").has_value());
}

}  // namespace
}  // namespace esd::domain

namespace esd::domain {
namespace {

// ---- deleted orders (storage/lifecycle.h) ----

class DeletedOrdersProjectionTest : public ProjectionsTest {
 protected:
  // o1 and o2 of "gone", o3 of "kept"; each with an item.
  void ThreeOrders() {
    OrderCommands exec(*store_);
    int n = 0;
    for (auto [id, customer] : {std::pair{"o1", "gone"}, {"o2", "gone"}, {"o3", "kept"}}) {
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(
          exec.Execute(CreateOrder{id, customer}, {"c" + std::to_string(n++), "", ""})));
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(
          exec.Execute(AddItem{id, "sku", 1, 100}, {"c" + std::to_string(n++), "", ""})));
    }
  }
  void Delete(const std::string& order_id, bool hard) {
    auto deleted = store_->DeleteStreamSync(OrderStream(order_id), storage::ExpectedVersion::Any(), hard);
    ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  }
  static std::vector<std::string> Listed(const OrderProjection& p, const std::string& customer) {
    std::vector<std::string> ids;
    const auto page = p.List(customer, std::nullopt, 100, "");
    for (const OrderState* o : page->orders) ids.push_back(o->order_id);
    return ids;
  }
};

TEST_F(DeletedOrdersProjectionTest, AHardDeleteSeenLiveDropsTheOrderFromGetAndList) {
  ThreeOrders();
  OrderProjection p;
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  ASSERT_NE(p.Get("o1"), nullptr);
  Delete("o1", /*hard=*/true);
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  EXPECT_EQ(p.Get("o1"), nullptr);
  EXPECT_EQ(Listed(p, "gone"), std::vector<std::string>{"o2"});
  EXPECT_EQ(Listed(p, "kept"), std::vector<std::string>{"o3"});
  EXPECT_EQ(p.checkpoint(), store_->DurablePosition().value);
}

TEST_F(DeletedOrdersProjectionTest, ASoftDeleteDropsTheOrderTooAndACreateAfterItStartsAfresh) {
  ThreeOrders();
  OrderProjection p;
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  Delete("o2", /*hard=*/false);
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  EXPECT_EQ(p.Get("o2"), nullptr);
  EXPECT_EQ(Listed(p, "gone"), std::vector<std::string>{"o1"});
  // Created again, for someone else: only its new events count.
  OrderCommands exec(*store_);
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(exec.Execute(CreateOrder{"o2", "kept"}, {"again", "", ""})));
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  ASSERT_NE(p.Get("o2"), nullptr);
  EXPECT_EQ(p.Get("o2")->customer_id, "kept");
  EXPECT_TRUE(p.Get("o2")->lines.empty());
  EXPECT_EQ(Listed(p, "gone"), std::vector<std::string>{"o1"});
  EXPECT_EQ(Rebuilt(), p);
}

TEST_F(DeletedOrdersProjectionTest, ADeleteWhoseTombstoneALaterMetadataChangeReplacedStillDropsTheOrder) {
  ThreeOrders();
  OrderProjection p;
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  Delete("o1", /*hard=*/false);
  // "$$order-o1" keeps its last event only: the tombstone is no longer read.
  storage::StreamMetadata custom;
  custom.custom = "note";
  auto changed = store_->SetStreamMetadataSync("order-o1", storage::ExpectedVersion::Any(), custom);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  EXPECT_EQ(p.Get("o1"), nullptr);
  EXPECT_EQ(Listed(p, "gone"), std::vector<std::string>{"o2"});
  EXPECT_EQ(p, Rebuilt());
}

TEST_F(DeletedOrdersProjectionTest, ACatchUpThatMeetsTheDeleteLaterNeverHoldsTheOrder) {
  ThreeOrders();
  Delete("o1", /*hard=*/true);
  Delete("o3", /*hard=*/false);
  // From position 0 (a rebuild, or a restart without snapshot): the events are not read.
  OrderProjection p = Rebuilt();
  EXPECT_EQ(p.Get("o1"), nullptr);
  EXPECT_EQ(p.Get("o3"), nullptr);
  EXPECT_NE(p.Get("o2"), nullptr);
  EXPECT_EQ(p.order_count(), 1u);
  EXPECT_EQ(Listed(p, "kept"), std::vector<std::string>{});
  EXPECT_EQ(p.checkpoint(), store_->DurablePosition().value);
}

TEST_F(DeletedOrdersProjectionTest, ARestartFromASnapshotTakenBeforeTheDeleteDropsTheOrderAtCatchUp) {
  ThreeOrders();
  OrderProjection before;
  ASSERT_TRUE(before.CatchUp(*store_).ok());
  const auto path = ProjectionSnapshotPath(dir_.path());
  ASSERT_TRUE(before.SaveSnapshot(*store_, path).ok());
  Delete("o1", /*hard=*/true);
  OrderProjection restarted = OrderProjection::LoadSnapshot(*store_, path);
  ASSERT_NE(restarted.Get("o1"), nullptr);  // the snapshot still holds it ...
  ASSERT_TRUE(restarted.CatchUp(*store_).ok());
  EXPECT_EQ(restarted.Get("o1"), nullptr);  // ... until the tombstone is applied
  EXPECT_EQ(restarted, Rebuilt());
}

TEST_F(DeletedOrdersProjectionTest, ASnapshotWhoseLastEventWasDeletedSinceIsStillUsed) {
  ThreeOrders();  // the last event, before the checkpoint, is o3's
  OrderProjection before;
  ASSERT_TRUE(before.CatchUp(*store_).ok());
  const auto path = ProjectionSnapshotPath(dir_.path());
  ASSERT_TRUE(before.SaveSnapshot(*store_, path).ok());
  Delete("o3", /*hard=*/true);
  std::string ignored;
  OrderProjection restarted = OrderProjection::LoadSnapshot(*store_, path, &ignored);
  EXPECT_EQ(ignored, "") << "not a log that lost its end: a restart need not replay from 0";
  EXPECT_EQ(restarted.checkpoint(), before.checkpoint());
  ASSERT_TRUE(restarted.CatchUp(*store_).ok());
  EXPECT_EQ(restarted.Get("o3"), nullptr);
  EXPECT_EQ(restarted, Rebuilt());
}

TEST_F(DeletedOrdersProjectionTest, DropForgetsTheOrderAtOnceAndItsSnapshotDoesNotHoldIt) {
  ThreeOrders();
  OrderProjection p;
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  EXPECT_EQ(p.OrdersOf("gone").size(), 2u);
  for (const auto& id : p.OrdersOf("gone")) EXPECT_TRUE(p.Drop(id));
  EXPECT_FALSE(p.Drop("o1"));  // not there any more
  EXPECT_TRUE(p.OrdersOf("gone").empty());
  EXPECT_EQ(Listed(p, "gone"), std::vector<std::string>{});
  EXPECT_EQ(p.Get("o2"), nullptr);
  const auto path = ProjectionSnapshotPath(dir_.path());
  ASSERT_TRUE(p.SaveSnapshot(*store_, path).ok());
  std::ifstream f(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find("gone"), std::string::npos);
  EXPECT_NE(bytes.find("kept"), std::string::npos);
  OrderProjection loaded = OrderProjection::LoadSnapshot(*store_, path);
  EXPECT_EQ(loaded.order_count(), 1u);
  EXPECT_TRUE(loaded.OrdersOf("gone").empty());
}

TEST_F(DeletedOrdersProjectionTest, OrdersOfListsEveryStatusNewestFirst) {
  ThreeOrders();
  OrderCommands exec(*store_);
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(exec.Execute(PlaceOrder{"o1"}, {"p1", "", ""})));
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(exec.Execute(CancelOrder{"o2", "r"}, {"x2", "", ""})));
  OrderProjection p;
  ASSERT_TRUE(p.CatchUp(*store_).ok());
  EXPECT_EQ(p.OrdersOf("gone"), (std::vector<std::string>{"o2", "o1"}));
  EXPECT_TRUE(p.OrdersOf("nobody").empty());
}

}  // namespace
}  // namespace esd::domain
