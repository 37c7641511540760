// OrderCommands against a real store: commands become events in "order-<id>", retries are
// idempotent, concurrent commands on one order lose no update, and Load folds the stream.
#include "domain/order_commands.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <cerrno>
#include <set>
#include <thread>

#include "domain/codec.h"
#include "storage/file.h"
#include "storage/test_util.h"

namespace esd::domain {
namespace {

using storage::testing::SmallOptions;
using storage::testing::TempDir;

// "sku-" + std::to_string(i) trips g++ 12's -Wrestrict false positive (GCC bug 105329).
std::string Id(const char* prefix, int i) {
  std::string id = prefix;
  id += std::to_string(i);
  return id;
}

CommandContext Ctx(std::string id) { return CommandContext{std::move(id), "flow-1", "test"}; }

template <typename T>
const T& As(const OrderCommands::Outcome& o) {
  if (!std::holds_alternative<T>(o)) {
    if (auto* r = std::get_if<Rejection>(&o)) ADD_FAILURE() << "rejected: " << r->rule << ": " << r->message;
    if (auto* s = std::get_if<storage::Status>(&o)) ADD_FAILURE() << "error: " << s->ToString();
    if (std::holds_alternative<OrderCommands::Conflict>(o)) ADD_FAILURE() << "conflict";
    if (std::holds_alternative<OrderCommands::Accepted>(o)) ADD_FAILURE() << "accepted";
  }
  return std::get<T>(o);
}

// The sentence of an idempotency conflict; a test failure when `o` is anything else.
std::string ConflictMessage(const OrderCommands::Outcome& o) {
  const storage::Status s = As<storage::Status>(o);
  EXPECT_EQ(s.code(), storage::Status::Code::kIdempotencyConflict) << s.ToString();
  return s.message();
}

class OrderCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = storage::Store::Open(dir_.path(), SmallOptions()).value(); }
  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(OrderCommandsTest, CommandsBecomeEventsInTheOrdersStream) {
  OrderCommands orders(*store_);
  EXPECT_EQ(As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1"))).first_version, 0u);
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));
  auto placed = As<OrderCommands::Accepted>(orders.Execute(PlaceOrder{"o1"}, Ctx("cmd-3")));
  EXPECT_EQ(placed.first_version, 2u);
  EXPECT_EQ(placed.position, 2u);

  auto events = store_->ReadStream("order-o1", storage::StreamVersion(0), 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].type, "OrderCreated");
  EXPECT_EQ((*events)[2].type, "OrderPlaced");
  EXPECT_EQ((*events)[1].content_type, kOrderContentType);
  EXPECT_EQ((*events)[1].id, CommandEventId("cmd-2", 0)) << "a command's id becomes its event ids";
  CommandContext recorded = Ctx("cmd-2");
  recorded.command_fingerprint = CommandFingerprint(AddItem{"o1", "apple", 3, 50});
  EXPECT_EQ(DecodeMetadata((*events)[1].metadata), recorded) << "who asked, and which command it was";
  auto decoded = DecodeEvent((*events)[2].type, (*events)[2].data);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<OrderPlaced>(*decoded), (OrderPlaced{150, 3}));

  auto state = orders.Load("o1");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, OrderStatus::kPlaced);
  EXPECT_EQ(state->total_cents, 150);
  EXPECT_EQ(state->version, 2u);
  EXPECT_EQ(state->placed_at, (*events)[2].timestamp);
}

TEST_F(OrderCommandsTest, ARuleRejectsByNameAndWritesNothing) {
  OrderCommands orders(*store_);
  auto r = std::get<Rejection>(orders.Execute(PlaceOrder{"nobody"}, Ctx("c")));
  EXPECT_EQ(r.rule, "order-not-found");
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o2", "c"}, Ctx("c1")));
  EXPECT_EQ(std::get<Rejection>(orders.Execute(PlaceOrder{"o2"}, Ctx("c2"))).rule, "order-empty");
  EXPECT_EQ(store_->DurablePosition(), storage::GlobalPosition(1));
}

TEST_F(OrderCommandsTest, RetriedCommandIsAnsweredWithItsOriginalResultAndWritesNothing) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o3", "c"}, Ctx("create")));
  auto first = As<OrderCommands::Accepted>(orders.Execute(AddItem{"o3", "pear", 2, 10}, Ctx("add")));
  auto again = As<OrderCommands::Accepted>(orders.Execute(AddItem{"o3", "pear", 2, 10}, Ctx("add")));
  EXPECT_TRUE(again.already_applied);
  EXPECT_EQ(again.first_version, first.first_version);
  EXPECT_EQ(again.position, first.position);
  EXPECT_EQ(orders.Load("o3")->lines.at(0).quantity, 2u) << "the retry did not add twice";
  // A create retried after the order moved on is still the same command, not a rule breach.
  EXPECT_TRUE(As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o3", "c"}, Ctx("create"))).already_applied);
}

TEST_F(OrderCommandsTest, ReusedCommandIdWithOtherCommandIsAConflict) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o2", "alice"}, Ctx("cmd-1")));
  // For another customer, or for an add-item.
  for (const OrderCommand& other : std::vector<OrderCommand>{CreateOrder{"o2", "bob"}, AddItem{"o2", "apple", 1, 10}}) {
    const std::string m = ConflictMessage(orders.Execute(other, Ctx("cmd-1")));
    EXPECT_NE(m.find("command id 'cmd-1'"), std::string::npos) << m;
    EXPECT_NE(m.find(R"(OrderCreated {"orderId":"o2","customerId":"alice")"), std::string::npos)
        << "what it was first used for: " << m;
  }
  EXPECT_EQ(store_->DurablePosition(), storage::GlobalPosition(1)) << "nothing was written";
  EXPECT_EQ(orders.Load("o2")->customer_id, "alice");
  EXPECT_TRUE(orders.Load("o2")->lines.empty());
}

TEST_F(OrderCommandsTest, ACommandIdReusedOnAnotherOrderIsAConflictNamingTheCommandId) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "alice"}, Ctx("cmd-1")));
  // Its event ids derive from the command id: the store holds them already, in order-o1.
  const std::string m = ConflictMessage(orders.Execute(CreateOrder{"o2", "alice"}, Ctx("cmd-1")));
  EXPECT_NE(m.find("command id 'cmd-1'"), std::string::npos) << m;
  EXPECT_NE(m.find("order-o1"), std::string::npos) << "where it was used: " << m;
  EXPECT_FALSE(store_->GetStreamInfo("order-o2").has_value());
}

TEST_F(OrderCommandsTest, ARetryThatRacedItsFirstAttemptIsAnsweredAsAppliedNotAsAConflict) {
  OrderCommands orders(*store_);
  // Both decided on the order before either was written; a create's event carries the time
  // of its decision, so the store sees the second as other content under the same ids.
  auto first = std::get<OrderCommands::Plan>(orders.Prepare(CreateOrder{"o", "c"}, Ctx("create")));
  auto retry = std::get<OrderCommands::Plan>(orders.Prepare(CreateOrder{"o", "c"}, Ctx("create")));
  As<OrderCommands::Accepted>(*orders.Finish(first, store_->AppendSync(first.stream, first.expected, first.events)));
  auto answered = orders.Finish(retry, store_->AppendSync(retry.stream, retry.expected, retry.events));
  ASSERT_TRUE(answered.has_value());
  EXPECT_TRUE(As<OrderCommands::Accepted>(*answered).already_applied);
  EXPECT_EQ(store_->DurablePosition(), storage::GlobalPosition(1));
}

TEST_F(OrderCommandsTest, ARetryOfACommandWrittenBeforeFingerprintsIsJudgedByItsIdAlone) {
  // As an esd before fingerprints wrote it: the metadata names the command id only.
  const EncodedEvent enc = Encode(OrderCreated{"old", "alice", 1}, Ctx("cmd-old"));
  storage::EventData e{CommandEventId("cmd-old", 0), enc.type, std::string(kOrderContentType), enc.metadata, enc.data};
  ASSERT_TRUE(store_->AppendSync("order-old", storage::ExpectedVersion::NoStream(), {e}).ok());
  OrderCommands orders(*store_);
  EXPECT_TRUE(As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"old", "alice"}, Ctx("cmd-old"))).already_applied);
  EXPECT_TRUE(As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"old", "bob"}, Ctx("cmd-old"))).already_applied)
      << "what it was cannot be told: answered as before fingerprints existed";
  EXPECT_EQ(store_->DurablePosition(), storage::GlobalPosition(1));
}

TEST_F(OrderCommandsTest, ConcurrentCommandsOnOneOrderLoseNoUpdate) {
  OrderCommands::Options options;
  options.max_attempts = 100;
  OrderCommands orders(*store_, options);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"hot", "c"}, Ctx("create")));
  constexpr int kThreads = 4, kPerThread = 25;
  std::atomic<int> conflicts_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      OrderCommands mine(*store_, options);
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "add-" + std::to_string(t) + "-" + std::to_string(i);
        auto o = mine.Execute(AddItem{"hot", "sku-" + std::to_string(t), 1, 100}, Ctx(id));
        if (std::holds_alternative<OrderCommands::Conflict>(o)) ++conflicts_seen;
        ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(o));
      }
    });
  }
  for (auto& t : threads) t.join();
  auto state = orders.Load("hot");
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->lines.size(), size_t{kThreads});
  for (const auto& line : state->lines) EXPECT_EQ(line.quantity, uint32_t{kPerThread}) << line.sku;
  EXPECT_EQ(state->total_cents, kThreads * kPerThread * 100);
  EXPECT_EQ(conflicts_seen.load(), 0);
}

TEST_F(OrderCommandsTest, AStreamWithAForeignEventDoesNotLoadAndTheLoadNamesIt) {
  storage::EventData foreign;
  foreign.id = storage::EventId::Random();
  foreign.type = "SomethingElse";
  foreign.data = "x";
  ASSERT_TRUE(store_->AppendSync("order-odd", storage::ExpectedVersion::Any(), {foreign}).ok());
  OrderCommands orders(*store_);
  OrderCommands::LoadStats stats;
  auto state = orders.Load("odd", &stats);
  ASSERT_EQ(state.status().code(), storage::Status::Code::kInvalidArgument);
  EXPECT_NE(state.status().message().find("position 0"), std::string::npos) << state.status().message();
  ASSERT_TRUE(stats.foreign.has_value());
  EXPECT_EQ(stats.foreign->position, 0u);
  EXPECT_EQ(stats.foreign->type, "SomethingElse");
}

TEST_F(OrderCommandsTest, ACommandOnAStreamWithAForeignEventIsRejectedNamingItsPositionAndType) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o", "c"}, Ctx("create")));
  storage::EventData json{storage::EventId::Random(), "ItemAdded", "application/json", "", R"({"sku":"a"})"};
  ASSERT_TRUE(store_->AppendSync("order-o", storage::ExpectedVersion::Any(), {json}).ok());
  for (const OrderCommand& c : std::vector<OrderCommand>{AddItem{"o", "a", 1, 1}, CancelOrder{"o", ""}}) {
    const Rejection r = std::get<Rejection>(orders.Execute(c, Ctx("next")));
    EXPECT_EQ(r.rule, "foreign-event");
    EXPECT_NE(r.message.find("stream 'order-o' holds at version 1 (position 1) an event of type 'ItemAdded' "
                             "(application/json)"),
              std::string::npos)
        << r.message;
    EXPECT_NE(r.message.find("esctl order create"), std::string::npos) << r.message;
  }
  EXPECT_EQ(store_->DurablePosition(), storage::GlobalPosition(2)) << "nothing was written";
}

TEST_F(OrderCommandsTest, AnOrderEventOfAnotherContentTypeIsForeignEvenIfItsBytesDecode) {
  const EncodedEvent enc = Encode(OrderCreated{"o", "c", 1}, Ctx("x"));
  storage::EventData e{storage::EventId::Random(), enc.type, "application/octet-stream", enc.metadata, enc.data};
  ASSERT_TRUE(store_->AppendSync("order-o", storage::ExpectedVersion::NoStream(), {e}).ok());
  OrderCommands orders(*store_);
  EXPECT_EQ(std::get<Rejection>(orders.Execute(AddItem{"o", "a", 1, 1}, Ctx("add"))).rule, "foreign-event");
}

TEST_F(OrderCommandsTest, ASnapshotOnDemandHoldsTheOrderAndAnOrderWithoutEventsGetsNone) {
  OrderCommands::Options never;
  never.snapshot_every = 0;  // the policy writes none: only the explicit call does
  OrderCommands orders(*store_, never);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));
  auto written = orders.SaveSnapshot("o1");
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  ASSERT_TRUE(written->has_value());
  EXPECT_EQ((*written)->version, 1u);
  const auto loaded = OrderSnapshots(dir_.path()).Load("order-o1");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, **written);
  auto none = orders.SaveSnapshot("nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(std::filesystem::exists(OrderSnapshots(dir_.path()).PathOf("order-nobody")));
}

TEST_F(OrderCommandsTest, ASnapshotOnDemandCoversOnlyEventsOnDisk) {
  store_.reset();
  storage::Options never = SmallOptions();
  never.durability.mode = storage::Durability::kNever;
  store_ = storage::Store::Open(dir_.path(), never).value();
  OrderCommands::Options no_policy;
  no_policy.snapshot_every = 0;
  OrderCommands orders(*store_, no_policy);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));
  ASSERT_LT(store_->SyncedPosition().value, 2u) << "kNever: nothing synced yet";
  auto written = orders.SaveSnapshot("o1");
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  ASSERT_TRUE(written->has_value());
  EXPECT_GT(store_->SyncedPosition().value, (*written)->last_position);
}

TEST_F(OrderCommandsTest, ASnapshotThatCannotBeUsedIsCountedEachTimeWithItsReason) {
  OrderCommands::Options every_two;
  every_two.snapshot_every = 2;
  every_two.cached_orders = 0;  // every load looks at the snapshot, none is served from memory
  OrderCommands orders(*store_, every_two);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));  // a snapshot
  EXPECT_EQ(orders.snapshot_load_failures(), 0u);
  const auto path = OrderSnapshots(dir_.path()).PathOf("order-o1");
  storage::testing::FlipByte(path, std::filesystem::file_size(path) - 3);
  OrderCommands::LoadStats stats;
  ASSERT_TRUE(orders.Load("o1", &stats).ok());
  EXPECT_NE(stats.snapshot_ignored.find("its body is damaged"), std::string::npos) << stats.snapshot_ignored;
  EXPECT_EQ(orders.snapshot_load_failures(), 1u);
  // A command loads the order too, and says why through Prepare's stats.
  auto prepared = orders.Prepare(AddItem{"o1", "pear", 1, 20}, Ctx("cmd-3"), &stats);
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Plan>(prepared));
  EXPECT_NE(stats.snapshot_ignored.find("its body is damaged"), std::string::npos) << stats.snapshot_ignored;
  EXPECT_EQ(orders.snapshot_load_failures(), 2u);
  std::filesystem::remove(path);
  ASSERT_TRUE(orders.Load("o1", &stats).ok());
  EXPECT_EQ(stats.snapshot_ignored, "");
  EXPECT_EQ(orders.snapshot_load_failures(), 2u) << "no snapshot is not a failed one";
}

TEST_F(OrderCommandsTest, ThePolicysSnapshotIsWrittenByTheGivenRunnerNotByTheCommand) {
  // The daemon hands snapshot writes (an fdatasync, a rename, a directory sync) to another
  // thread, so that a command never holds its event loop for them.
  std::vector<std::function<void()>> writes;
  OrderCommands::Options every_two;
  every_two.snapshot_every = 2;
  every_two.write_snapshot = [&writes](std::function<void()> write) { writes.push_back(std::move(write)); };
  every_two.cached_orders = 0;  // the load below reads the snapshot, not the order kept in memory
  OrderCommands orders(*store_, every_two);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));  // crosses 2
  const auto path = OrderSnapshots(dir_.path()).PathOf("order-o1");
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(path)) << "the command did not write it itself";
  writes[0]();
  OrderCommands::LoadStats stats;
  ASSERT_TRUE(orders.Load("o1", &stats).ok());
  EXPECT_EQ(stats.snapshot_version, 1u) << "the snapshot written later holds the order as of the command";
}

// Every fdatasync of a segment fails (EIO); other files sync.
class FailSegmentSyncs : public storage::FileFaults {
 public:
  storage::InjectedFault Before(storage::FileOp op, const std::filesystem::path& path) override {
    return {op == storage::FileOp::kSync && path.extension() == ".seg" ? EIO : 0};
  }
};

TEST_F(OrderCommandsTest, NoSnapshotIsWrittenWhenTheLogCannotBeSynced) {
  store_.reset();
  storage::Options never = SmallOptions();
  never.durability.mode = storage::Durability::kNever;
  store_ = storage::Store::Open(dir_.path(), never).value();
  OrderCommands::Options no_policy;
  no_policy.snapshot_every = 0;
  OrderCommands orders(*store_, no_policy);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  FailSegmentSyncs faults;
  storage::SetFileFaults(&faults);
  auto written = orders.SaveSnapshot("o1");
  storage::SetFileFaults(nullptr);
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.status().message().find("could not be synced"), std::string::npos) << written.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(OrderSnapshots(dir_.path()).PathOf("order-o1")));
}

// The order as a fresh OrderCommands (nothing cached) reads it from the log.
OrderState FromTheLog(storage::Store& store, const std::string& order_id) {
  OrderCommands::Options none;
  none.cached_orders = 0;
  return OrderCommands(store, none).Load(order_id).value();
}

TEST_F(OrderCommandsTest, ACommandOnAnOrderJustChangedReadsNoEventAndDecidesOnTheSameState) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o", "c"}, Ctx("create")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o", "apple", 2, 30}, Ctx("add")));
  OrderCommands::LoadStats stats;
  auto prepared = orders.Prepare(AddItem{"o", "pear", 1, 20}, Ctx("add-2"), &stats);
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Plan>(prepared));
  EXPECT_EQ(stats.cached_version, 1u);
  EXPECT_EQ(stats.events_read, 0u) << "the order was kept as its last command left it";
  EXPECT_EQ(std::get<OrderCommands::Plan>(prepared).state, FromTheLog(*store_, "o"))
      << "the state kept equals the fold of the log, positions and timestamps included";
  EXPECT_EQ(std::get<OrderCommands::Plan>(prepared).expected.version(), storage::StreamVersion(1));
}

TEST_F(OrderCommandsTest, ACommandAfterAnotherWriterChangedTheOrderDecidesOnTheNewState) {
  OrderCommands mine(*store_), theirs(*store_);
  As<OrderCommands::Accepted>(mine.Execute(CreateOrder{"o", "c"}, Ctx("create")));  // mine keeps version 0
  As<OrderCommands::Accepted>(theirs.Execute(AddItem{"o", "apple", 2, 30}, Ctx("theirs")));
  // Decided on the order without the apple, this would be accepted at another price.
  const Rejection r = std::get<Rejection>(mine.Execute(AddItem{"o", "apple", 1, 99}, Ctx("mine")));
  EXPECT_EQ(r.rule, "price-mismatch") << r.message;
  OrderCommands::LoadStats stats;
  auto state = mine.Load("o", &stats);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(stats.cached_version, 1u);
  EXPECT_EQ(stats.events_read, 0u);
  EXPECT_EQ(*state, FromTheLog(*store_, "o"));
  ASSERT_EQ(state->lines.size(), 1u);
  EXPECT_EQ(state->lines[0].unit_price_cents, 30);
}

TEST_F(OrderCommandsTest, AnOrderKeptBehindTheLogReadsOnlyTheEventsAfterIt) {
  OrderCommands mine(*store_), theirs(*store_);
  As<OrderCommands::Accepted>(mine.Execute(CreateOrder{"o", "c"}, Ctx("create")));
  for (int i = 0; i < 3; ++i) {
    As<OrderCommands::Accepted>(theirs.Execute(AddItem{"o", Id("sku-", i), 1, 10}, Ctx(Id("t", i))));
  }
  OrderCommands::LoadStats stats;
  auto state = mine.Load("o", &stats);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(stats.cached_version, 0u);
  EXPECT_EQ(stats.events_read, 3u) << "versions 1..3, not the whole stream";
  EXPECT_EQ(*state, FromTheLog(*store_, "o"));
}

TEST_F(OrderCommandsTest, AfterAConflictTheNextDecisionFoldsOnlyTheEventsInBetween) {
  OrderCommands mine(*store_), theirs(*store_);
  As<OrderCommands::Accepted>(mine.Execute(CreateOrder{"o", "c"}, Ctx("create")));
  auto first = mine.Prepare(AddItem{"o", "pear", 1, 20}, Ctx("mine"));
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Plan>(first));
  As<OrderCommands::Accepted>(theirs.Execute(AddItem{"o", "apple", 2, 30}, Ctx("theirs")));
  auto& plan = std::get<OrderCommands::Plan>(first);
  const auto appended = store_->AppendSync(plan.stream, plan.expected, std::move(plan.events));
  ASSERT_EQ(appended.status().code(), storage::Status::Code::kWrongExpectedVersion);
  EXPECT_FALSE(mine.Finish(plan, appended).has_value()) << "decide again";
  OrderCommands::LoadStats stats;
  auto again = mine.Prepare(AddItem{"o", "pear", 1, 20}, Ctx("mine"), &stats);
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Plan>(again));
  EXPECT_EQ(stats.cached_version, 0u);
  EXPECT_EQ(stats.events_read, 1u) << "their apple, nothing before it";
  EXPECT_EQ(std::get<OrderCommands::Plan>(again).expected.version(), storage::StreamVersion(1));
  EXPECT_EQ(std::get<OrderCommands::Plan>(again).state, FromTheLog(*store_, "o"));
}

TEST_F(OrderCommandsTest, AnEvictedOrderIsReadFromItsStreamAgain) {
  OrderCommands::Options one;
  one.cached_orders = 1;
  OrderCommands orders(*store_, one);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"a", "c"}, Ctx("a")));
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"b", "c"}, Ctx("b")));  // evicts a
  OrderCommands::LoadStats stats;
  auto a = orders.Load("a", &stats);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(stats.cached_version.has_value());
  EXPECT_EQ(stats.events_read, 1u);
  EXPECT_EQ(*a, FromTheLog(*store_, "a"));
  EXPECT_EQ(orders.cached_orders(), 1u);
  EXPECT_EQ(orders.cache_counts().evictions, 2u) << "a by b, then b by a";
  ASSERT_TRUE(orders.Load("a", &stats).ok());
  EXPECT_EQ(stats.cached_version, 0u) << "loading kept it again";
  EXPECT_EQ(stats.events_read, 0u);
}

TEST_F(OrderCommandsTest, AKeptOrderIsNotUsedPastAForeignEventAndIsDropped) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o", "c"}, Ctx("create")));
  ASSERT_EQ(orders.cached_orders(), 1u);
  storage::EventData json{storage::EventId::Random(), "ItemAdded", "application/json", "", R"({"sku":"a"})"};
  ASSERT_TRUE(store_->AppendSync("order-o", storage::ExpectedVersion::Any(), {json}).ok());
  EXPECT_EQ(std::get<Rejection>(orders.Execute(AddItem{"o", "a", 1, 1}, Ctx("add"))).rule, "foreign-event");
  EXPECT_EQ(orders.cached_orders(), 0u) << "a load that failed keeps nothing";
  OrderCommands::LoadStats stats;
  EXPECT_EQ(orders.Load("o", &stats).status().code(), storage::Status::Code::kInvalidArgument);
  EXPECT_FALSE(stats.cached_version.has_value());
  EXPECT_EQ(stats.events_read, 1u) << "read from the start again, up to the foreign event";
}

TEST_F(OrderCommandsTest, UnderIntervalDurabilityEachCommandDecidesOnTheOneBeforeIt) {
  store_.reset();
  storage::Options lazy = SmallOptions();
  lazy.durability.mode = storage::Durability::kInterval;
  lazy.durability.interval = std::chrono::minutes(10);  // nothing is synced while the test runs
  store_ = storage::Store::Open(dir_.path(), lazy).value();
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o", "c"}, Ctx("create")));
  for (int i = 0; i < 5; ++i) {
    const auto added = As<OrderCommands::Accepted>(orders.Execute(AddItem{"o", Id("sku-", i), 1, 10}, Ctx(Id("add-", i))));
    EXPECT_EQ(added.last_version, static_cast<uint64_t>(i + 1));
  }
  OrderCommands::LoadStats stats;
  auto state = orders.Load("o", &stats);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(stats.cached_version, 5u);
  EXPECT_EQ(state->lines.size(), 5u);
  EXPECT_EQ(*state, FromTheLog(*store_, "o"));
}

TEST_F(OrderCommandsTest, ARetryIsRecognisedFromTheKeptOrder) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o", "c"}, Ctx("create")));
  const auto first = As<OrderCommands::Accepted>(orders.Execute(AddItem{"o", "a", 1, 5}, Ctx("add")));
  const auto again = As<OrderCommands::Accepted>(orders.Execute(AddItem{"o", "a", 1, 5}, Ctx("add")));
  EXPECT_TRUE(again.already_applied);
  EXPECT_EQ(again.position, first.position);
  EXPECT_EQ(store_->DurablePosition(), storage::GlobalPosition(2)) << "nothing new was written";
}

// ---- deleted orders (storage/lifecycle.h) ----

TEST_F(OrderCommandsTest, AHardDeletedOrderIsNotFoundToCommandsAndCannotBeCreatedAgain) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));
  ASSERT_TRUE(store_->DeleteStreamSync("order-o1", storage::ExpectedVersion::Any(), true).ok());
  OrderCommands::LoadStats stats;
  auto loaded = orders.Load("o1", &stats);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->status, OrderStatus::kNone);
  EXPECT_TRUE(stats.hard_deleted);
  EXPECT_EQ(stats.cached_version, std::nullopt) << "the state kept in memory was not used";
  EXPECT_EQ(std::get<Rejection>(orders.Execute(AddItem{"o1", "pear", 1, 1}, Ctx("cmd-3"))).rule, "order-not-found");
  const Rejection again = std::get<Rejection>(orders.Execute(CreateOrder{"o1", "c2"}, Ctx("cmd-4")));
  EXPECT_EQ(again.rule, "order-deleted");
  EXPECT_NE(again.message.find("esctl order create NEW-ID"), std::string::npos) << again.message;
  // The retry of a command the order had applied is no retry now: its order is gone.
  EXPECT_EQ(std::get<Rejection>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2"))).rule, "order-not-found");
}

TEST_F(OrderCommandsTest, ACommandDecidedBeforeAHardDeleteIsAnsweredAsIfAfterIt) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  auto prepared = orders.Prepare(AddItem{"o1", "pear", 1, 1}, Ctx("cmd-2"));
  auto& plan = std::get<OrderCommands::Plan>(prepared);
  ASSERT_TRUE(store_->DeleteStreamSync("order-o1", storage::ExpectedVersion::Any(), true).ok());
  auto appended = store_->AppendSync(plan.stream, plan.expected, plan.events);
  ASSERT_EQ(appended.status().code(), storage::Status::Code::kStreamDeleted) << appended.status().ToString();
  auto outcome = orders.Finish(plan, appended);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(std::get<Rejection>(*outcome).rule, "order-not-found");
}

TEST_F(OrderCommandsTest, ASoftDeletedOrderIsNotFoundAndACreateStartsItAgainAfterItsLastVersion) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));
  ASSERT_TRUE(store_->DeleteStreamSync("order-o1", storage::ExpectedVersion::Any(), false).ok());
  EXPECT_EQ(orders.Load("o1")->status, OrderStatus::kNone);
  EXPECT_EQ(std::get<Rejection>(orders.Execute(PlaceOrder{"o1"}, Ctx("cmd-3"))).rule, "order-not-found");
  const auto created = As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c2"}, Ctx("cmd-4")));
  EXPECT_EQ(created.first_version, 2u) << "versions continue after the deleted ones";
  const auto again = orders.Load("o1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->customer_id, "c2");
  EXPECT_TRUE(again->lines.empty()) << "nothing of the deleted order comes back";
}

TEST_F(OrderCommandsTest, AKeptStateOrASnapshotOfADeletedOrderIsNeverUsed) {
  OrderCommands::Options every_two;
  every_two.snapshot_every = 2;
  OrderCommands orders(*store_, every_two);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  As<OrderCommands::Accepted>(orders.Execute(AddItem{"o1", "apple", 3, 50}, Ctx("cmd-2")));  // a snapshot
  ASSERT_TRUE(std::filesystem::exists(OrderSnapshots(dir_.path()).PathOf("order-o1")));
  ASSERT_EQ(orders.cached_orders(), 1u);
  ASSERT_TRUE(store_->DeleteStreamSync("order-o1", storage::ExpectedVersion::Any(), false).ok());
  OrderCommands::LoadStats stats;
  EXPECT_EQ(orders.Load("o1", &stats)->status, OrderStatus::kNone);
  EXPECT_EQ(stats.cached_version, std::nullopt);
  EXPECT_EQ(stats.snapshot_version, std::nullopt);
  EXPECT_EQ(stats.snapshot_ignored, "") << "not looked at: no failure to count";
  EXPECT_EQ(orders.cached_orders(), 0u) << "the kept state was dropped";
  // A new OrderCommands (a restart) does not read the old file either.
  OrderCommands restarted(*store_, every_two);
  EXPECT_EQ(restarted.Load("o1", &stats)->status, OrderStatus::kNone);
  EXPECT_EQ(stats.snapshot_version, std::nullopt);
}

TEST_F(OrderCommandsTest, ForgetOrdersRemovesTheirSnapshotsAfterTheWritesQueuedBeforeIt) {
  std::vector<std::function<void()>> queue;
  OrderCommands::Options every_two;
  every_two.snapshot_every = 2;
  every_two.write_snapshot = [&queue](std::function<void()> job) { queue.push_back(std::move(job)); };
  OrderCommands orders(*store_, every_two);
  for (const char* id : {"o1", "o2"}) {
    As<OrderCommands::Accepted>(orders.Execute(CreateOrder{id, "c1"}, Ctx(std::string("create-") + id)));
    As<OrderCommands::Accepted>(orders.Execute(AddItem{id, "apple", 3, 50}, Ctx(std::string("add-") + id)));
  }
  ASSERT_EQ(queue.size(), 2u);  // two snapshot writes queued, not run yet
  std::optional<storage::Status> done;
  orders.ForgetOrders({"o1"}, [&done](storage::Status s) { done = s; });
  EXPECT_EQ(orders.cached_orders(), 1u) << "o1's kept state is dropped at once";
  ASSERT_EQ(queue.size(), 3u);
  EXPECT_FALSE(done.has_value()) << "the removal waits for its turn";
  for (auto& job : queue) job();
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->ok()) << done->ToString();
  const OrderSnapshots snapshots(dir_.path());
  EXPECT_FALSE(std::filesystem::exists(snapshots.PathOf("order-o1")));
  EXPECT_TRUE(std::filesystem::exists(snapshots.PathOf("order-o2")));
  // Removing what is not there is no failure.
  orders.ForgetOrders({"o1", "never"}, [&done](storage::Status s) { done = s; });
  queue.back()();
  EXPECT_TRUE(done->ok()) << done->ToString();
}

TEST_F(OrderCommandsTest, NoSnapshotIsWrittenForAnOrderWhoseStreamWasDeleted) {
  OrderCommands orders(*store_);
  As<OrderCommands::Accepted>(orders.Execute(CreateOrder{"o1", "c1"}, Ctx("cmd-1")));
  const OrderState state = orders.Load("o1").value();
  ASSERT_TRUE(store_->DeleteStreamSync("order-o1", storage::ExpectedVersion::Any(), true).ok());
  const OrderSnapshots snapshots(dir_.path());
  const storage::Status saved = snapshots.Save(*store_, "order-o1", state);  // a write queued before the delete
  EXPECT_EQ(saved.code(), storage::Status::Code::kInvalidArgument) << saved.ToString();
  EXPECT_FALSE(std::filesystem::exists(snapshots.PathOf("order-o1")));
  auto on_demand = orders.SaveSnapshot("o1");
  ASSERT_TRUE(on_demand.ok()) << on_demand.status().ToString();
  EXPECT_FALSE(on_demand->has_value()) << "a deleted order has no events to snapshot";
}

TEST(OrderIdOf, NamesTheIdOfAnOrderStreamOnly) {
  EXPECT_EQ(OrderIdOf("order-o1"), "o1");
  EXPECT_EQ(OrderIdOf(OrderStream("x-y")), "x-y");
  EXPECT_EQ(OrderIdOf("order-"), std::nullopt) << "no id";
  EXPECT_EQ(OrderIdOf("orders"), std::nullopt);
  EXPECT_EQ(OrderIdOf("bulk-1"), std::nullopt);
}

TEST(RawAppendRefusal, RefusesOrderStreamsOnlyAndNamesTheOrderCommands) {
  const auto refusal = RawAppendRefusal("order-1");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("stream 'order-1' is reserved for the Order service"), std::string::npos) << *refusal;
  EXPECT_NE(refusal->find("esctl order create"), std::string::npos) << "what to use instead: " << *refusal;
  EXPECT_TRUE(RawAppendRefusal(OrderStream("x-y")).has_value());
  EXPECT_EQ(RawAppendRefusal("cart-1"), std::nullopt);
  EXPECT_EQ(RawAppendRefusal("orders"), std::nullopt);
  EXPECT_EQ(RawAppendRefusal("order-"), std::nullopt) << "no order id: no order's stream";
}

TEST(CommandFingerprint, IsStablePerCommandAndDiffersWhenAnyFieldOrTheKindDiffers) {
  EXPECT_EQ(CommandFingerprint(CreateOrder{"o", "c"}), CommandFingerprint(CreateOrder{"o", "c"}));
  const std::vector<OrderCommand> distinct = {
      CreateOrder{"o", "c"},        CreateOrder{"o", "d"},           CreateOrder{"p", "c"},
      CreateOrder{"oc", ""},        CreateOrder{"", "oc"},           AddItem{"o", "s", 1, 10},
      AddItem{"o", "s", 2, 10},     AddItem{"o", "s", 1, 11},        AddItem{"o", "t", 1, 10},
      RemoveItem{"o", "s", 1},      RemoveItem{"o", "s", std::nullopt}, PlaceOrder{"o"},
      CancelOrder{"o", ""},         CancelOrder{"o", "why"},
  };
  std::set<uint64_t> seen;
  for (const OrderCommand& c : distinct) {
    const uint64_t f = CommandFingerprint(c);
    EXPECT_NE(f, 0u) << "0 means: written before fingerprints";
    EXPECT_TRUE(seen.insert(f).second) << "command " << seen.size();
  }
}

// Fingerprints are written into the metadata of every command's events, and a retry after
// an upgrade is told from another command by comparing them: their values never change.
TEST(CommandFingerprint, ValuesWrittenBeforeStayTheSame) {
  EXPECT_EQ(CommandFingerprint(CreateOrder{"order-1", "customer-1"}), 0x5b69c019f7abc7c9u);
  EXPECT_EQ(CommandFingerprint(AddItem{"order-1", "sku-0042", 3, 1999}), 0xcc66c083071ceaa9u);
  EXPECT_EQ(CommandFingerprint(RemoveItem{"order-1", "sku-0042", std::nullopt}), 0x49fb71a0556c3b81u);
  EXPECT_EQ(CommandFingerprint(RemoveItem{"order-1", "sku-0042", 2}), 0x5405d35a59e0b925u);
  EXPECT_EQ(CommandFingerprint(PlaceOrder{"order-1"}), 0xc827f465981723cdu);
  EXPECT_EQ(CommandFingerprint(CancelOrder{"order-1", std::string(300, 'r')}), 0xf86308f49181cdf5u);  // past any small buffer
}

TEST(CommandEventId, IsStablePerCommandAndIndexAndDiffersOtherwise) {
  EXPECT_EQ(CommandEventId("a", 0), CommandEventId("a", 0));
  EXPECT_NE(CommandEventId("a", 0), CommandEventId("a", 1));
  EXPECT_NE(CommandEventId("a", 0), CommandEventId("b", 0));
  EXPECT_FALSE(CommandEventId("", 0).IsNil());
}

}  // namespace
}  // namespace esd::domain
