// OrderCommands against a real store: commands become events in "order-<id>", retries are
// idempotent, concurrent commands on one order lose no update, and Load folds the stream.
#include "domain/order_commands.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <thread>

#include "domain/codec.h"
#include "storage/file.h"
#include "storage/test_util.h"

namespace esd::domain {
namespace {

using storage::testing::SmallOptions;
using storage::testing::TempDir;

CommandContext Ctx(std::string id) { return CommandContext{std::move(id), "flow-1", "test"}; }

template <typename T>
const T& As(const OrderCommands::Outcome& o) {
  if (!std::holds_alternative<T>(o)) {
    if (auto* r = std::get_if<Rejection>(&o)) ADD_FAILURE() << "rejected: " << r->rule << ": " << r->message;
    if (auto* s = std::get_if<storage::Status>(&o)) ADD_FAILURE() << "error: " << s->ToString();
    if (std::holds_alternative<OrderCommands::Conflict>(o)) ADD_FAILURE() << "conflict";
  }
  return std::get<T>(o);
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
  EXPECT_EQ(DecodeMetadata((*events)[1].metadata), Ctx("cmd-2"));
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

TEST_F(OrderCommandsTest, AStreamWithAForeignEventIsReportedAsCorruptionByPosition) {
  storage::EventData foreign;
  foreign.id = storage::EventId::Random();
  foreign.type = "SomethingElse";
  foreign.data = "x";
  ASSERT_TRUE(store_->AppendSync("order-odd", storage::ExpectedVersion::Any(), {foreign}).ok());
  OrderCommands orders(*store_);
  auto state = orders.Load("odd");
  ASSERT_EQ(state.status().code(), storage::Status::Code::kCorruption);
  EXPECT_NE(state.status().message().find("position 0"), std::string::npos) << state.status().message();
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

TEST(OrderIdOf, NamesTheIdOfAnOrderStreamOnly) {
  EXPECT_EQ(OrderIdOf("order-o1"), "o1");
  EXPECT_EQ(OrderIdOf(OrderStream("x-y")), "x-y");
  EXPECT_EQ(OrderIdOf("order-"), std::nullopt) << "no id";
  EXPECT_EQ(OrderIdOf("orders"), std::nullopt);
  EXPECT_EQ(OrderIdOf("bulk-1"), std::nullopt);
}

TEST(CommandEventId, IsStablePerCommandAndIndexAndDiffersOtherwise) {
  EXPECT_EQ(CommandEventId("a", 0), CommandEventId("a", 0));
  EXPECT_NE(CommandEventId("a", 0), CommandEventId("a", 1));
  EXPECT_NE(CommandEventId("a", 0), CommandEventId("b", 0));
  EXPECT_FALSE(CommandEventId("", 0).IsNil());
}

}  // namespace
}  // namespace esd::domain
