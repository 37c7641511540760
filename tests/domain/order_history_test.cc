// The audit trail and time travel: an order as of every version equals the fold of that
// prefix, and as of a time it includes exactly the events committed by then.
#include "domain/order_history.h"

#include <gtest/gtest.h>

#include "domain/order_commands.h"
#include "storage/test_util.h"

namespace esd::domain {
namespace {

class OrderHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = storage::Store::Open(dir_.path(), storage::testing::SmallOptions()).value();
    OrderCommands orders(*store_);
    const std::vector<OrderCommand> commands = {
        CreateOrder{"h1", "cust"},          AddItem{"h1", "apple", 3, 50}, AddItem{"h1", "pear", 1, 80},
        RemoveItem{"h1", "apple", 1},       AddItem{"h1", "plum", 5, 20},  RemoveItem{"h1", "pear", std::nullopt},
        PlaceOrder{"h1"},                   CancelOrder{"h1", "changed my mind"},
    };
    for (size_t i = 0; i < commands.size(); ++i) {
      auto o = orders.Execute(commands[i], {"cmd-" + std::to_string(i), "corr", "tester"});
      ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(o)) << i;
    }
  }
  storage::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(OrderHistoryTest, AuditTrailListsEveryEventWithTimePositionVersionAndMetadata) {
  auto events = OrderHistory(*store_).Events("h1");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 8u);
  for (uint64_t v = 0; v < events->size(); ++v) {
    const RecordedOrderEvent& e = (*events)[v];
    EXPECT_EQ(e.version, v);
    EXPECT_EQ(e.position, v);
    EXPECT_GT(e.timestamp, 0u);
    EXPECT_EQ(e.context.command_id, "cmd-" + std::to_string(v));
    EXPECT_EQ(e.context.correlation_id, "corr");
    EXPECT_EQ(e.context.caused_by, "tester");
  }
  EXPECT_TRUE(std::holds_alternative<OrderCreated>((*events)[0].event));
  EXPECT_EQ(std::get<OrderCancelled>((*events)[7].event).reason, "changed my mind");
  EXPECT_TRUE(OrderHistory(*store_).Events("nobody")->empty());
}

TEST_F(OrderHistoryTest, AsOfEveryVersionEqualsTheFoldOfThatPrefix) {
  OrderHistory history(*store_);
  auto events = history.Events("h1").value();
  OrderState folded;
  for (uint64_t v = 0; v < events.size(); ++v) {
    Apply(folded, events[v]);
    auto as_of = history.AsOfVersion("h1", v);
    ASSERT_TRUE(as_of.ok());
    EXPECT_EQ(*as_of, folded) << "version " << v;
  }
  EXPECT_EQ(history.AsOfVersion("h1", 1000).value(), folded) << "past the end: the whole order";
  // Before it was placed: open, with its lines.
  auto before_placed = history.AsOfVersion("h1", 5).value();
  EXPECT_EQ(before_placed.status, OrderStatus::kOpen);
  EXPECT_EQ(before_placed.total_cents, 2 * 50 + 5 * 20);
}

TEST_F(OrderHistoryTest, AsOfTimeIncludesExactlyTheEventsCommittedByThen) {
  OrderHistory history(*store_);
  auto events = history.Events("h1").value();
  auto expected_at = [&](uint64_t t) {
    OrderState s;
    for (const auto& e : events) {
      if (e.timestamp <= t) Apply(s, e);
    }
    return s;
  };
  for (const auto& e : events) {
    for (uint64_t t : {e.timestamp - 1, e.timestamp, e.timestamp + 1}) {
      auto at = history.AsOfTime("h1", t);
      ASSERT_TRUE(at.ok());
      EXPECT_EQ(*at, expected_at(t)) << "at " << t << " (event version " << e.version << ")";
    }
  }
  EXPECT_EQ(history.AsOfTime("h1", events.front().timestamp - 1)->status, OrderStatus::kNone)
      << "before it was created";
  EXPECT_EQ(history.AsOfTime("h1", UINT64_MAX)->status, OrderStatus::kCancelled);
  EXPECT_EQ(history.AsOfTime("nobody", UINT64_MAX)->status, OrderStatus::kNone);
}

}  // namespace
}  // namespace esd::domain

namespace esd::domain {
namespace {

TEST_F(OrderHistoryTest, AHardDeletedOrderHasNoHistoryAndIsNotFoundAsOfAnyVersionOrTime) {
  const auto events = OrderHistory(*store_).Events("h1").value();
  ASSERT_TRUE(store_->DeleteStreamSync("order-h1", storage::ExpectedVersion::Any(), true).ok());
  {
    const OrderHistory history(*store_);
    auto trail = history.Events("h1");
    ASSERT_TRUE(trail.ok()) << trail.status().ToString();
    EXPECT_TRUE(trail->empty());
    for (uint64_t v : {uint64_t{0}, uint64_t{3}, uint64_t{7}, UINT64_MAX}) {
      auto at = history.AsOfVersion("h1", v);
      ASSERT_TRUE(at.ok()) << at.status().ToString();
      EXPECT_EQ(at->status, OrderStatus::kNone) << v;
    }
    for (const auto& e : events) {
      auto at = history.AsOfTime("h1", e.timestamp);
      ASSERT_TRUE(at.ok()) << at.status().ToString();
      EXPECT_EQ(at->status, OrderStatus::kNone);
    }
  }
}

TEST_F(OrderHistoryTest, AnOrderCreatedAgainAfterASoftDeleteHasOnlyItsNewPast) {
  const auto old = OrderHistory(*store_).Events("h1").value();
  ASSERT_TRUE(store_->DeleteStreamSync("order-h1", storage::ExpectedVersion::Any(), false).ok());
  EXPECT_TRUE(OrderHistory(*store_).Events("h1")->empty());
  EXPECT_EQ(OrderHistory(*store_).AsOfTime("h1", old.back().timestamp)->status, OrderStatus::kNone);
  OrderCommands orders(*store_);
  ASSERT_TRUE(std::holds_alternative<OrderCommands::Accepted>(
      orders.Execute(CreateOrder{"h1", "someone-else"}, {"again", "", ""})));
  const OrderHistory history(*store_);
  auto trail = history.Events("h1").value();
  ASSERT_EQ(trail.size(), 1u);
  EXPECT_EQ(trail[0].version, old.size());
  EXPECT_EQ(history.AsOfTime("h1", old.back().timestamp)->status, OrderStatus::kNone)
      << "before it was created again, the order was gone";
  auto now = history.AsOfTime("h1", trail[0].timestamp);
  EXPECT_EQ(now->customer_id, "someone-else");
  EXPECT_EQ(history.AsOfVersion("h1", 7)->status, OrderStatus::kNone);
}

}  // namespace
}  // namespace esd::domain
