// The Order service end to end through a real esd: commands, rules by name, read-your-
// writes, history, time travel, paging, and a restart in the middle.
#include <gtest/gtest.h>
#include <kj/async.h>
#include <kj/exception.h>
#include <kj/vector.h>
#include <signal.h>

#include <fstream>
#include <set>

#include "client/client.h"
#include "domain/snapshots.h"
#include "server/damaged_store.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::CommandOutcome;
using testing::EsdProcess;

// "d" + std::to_string(i) trips g++ 12's -Wrestrict false positive (GCC bug 105329).
std::string Id(const char* prefix, int i) {
  std::string id = prefix;
  id += std::to_string(i);
  return id;
}

TEST(Orders, CreateFillPlaceCancelWithRulesHistoryAndTimeTravel) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->CreateOrder("o1", "alice", "cmd-1", "checkout-7").ok());
  ASSERT_TRUE(c->AddItem("o1", "apple", 3, 50, "cmd-2").ok());
  auto pear = c->AddItem("o1", "pear", 2, 80, "cmd-3");
  ASSERT_TRUE(pear.ok());
  auto mismatch = c->AddItem("o1", "apple", 1, 99, "cmd-x");
  EXPECT_EQ(mismatch.kind, CommandOutcome::Kind::kRejected);
  EXPECT_EQ(mismatch.rule, "price-mismatch") << mismatch.message;
  auto placed = c->PlaceOrder("o1", "cmd-4");
  ASSERT_TRUE(placed.ok());
  EXPECT_EQ(placed.version, 3u);

  auto now = c->GetOrder("o1", placed.position);  // read-your-writes
  ASSERT_FALSE(now.timed_out);
  ASSERT_TRUE(now.order.has_value());
  EXPECT_EQ(now.order->status, "placed");
  EXPECT_EQ(now.order->total_cents, 3 * 50 + 2 * 80);
  EXPECT_EQ(now.order->customer_id, "alice");
  ASSERT_EQ(now.order->lines.size(), 2u);

  auto late = c->AddItem("o1", "plum", 1, 10, "cmd-5");
  EXPECT_EQ(late.rule, "order-not-open");
  auto cancel = c->CancelOrder("o1", "changed my mind", "cmd-6");
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(c->CancelOrder("o1", "again", "cmd-7").rule, "order-already-cancelled");
  EXPECT_EQ(c->GetOrder("o1", cancel.position).order->status, "cancelled");

  auto history = c->History("o1");
  ASSERT_EQ(history.size(), 5u);
  EXPECT_EQ(history[0].type, "OrderCreated");
  EXPECT_EQ(history[0].correlation_id, "checkout-7");
  EXPECT_EQ(history[0].command_id, "cmd-1");
  EXPECT_EQ(history[0].caused_by, "role:admin");
  EXPECT_NE(history[1].json.find("\"sku\":\"apple\""), std::string::npos) << history[1].json;
  EXPECT_EQ(history[4].type, "OrderCancelled");

  auto before_placed = c->GetOrderAtVersion("o1", 2);
  ASSERT_TRUE(before_placed.order.has_value());
  EXPECT_EQ(before_placed.order->status, "open");
  auto at_pear = c->GetOrderAtTime("o1", history[2].timestamp_micros);
  EXPECT_EQ(at_pear.order->lines.size(), 2u);
  EXPECT_EQ(at_pear.order->status, "open");
  EXPECT_FALSE(c->GetOrderAtTime("o1", history[0].timestamp_micros - 1).order.has_value());
  EXPECT_FALSE(c->GetOrder("nobody").order.has_value());
}

TEST(Orders, ARetriedCommandReturnsTheOriginalOutcomeAndWritesNothing) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->CreateOrder("r1", "bob", "create-r1").ok());
  auto first = c->AddItem("r1", "x", 2, 5, "add-r1");
  auto again = c->AddItem("r1", "x", 2, 5, "add-r1");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.already_applied);
  EXPECT_EQ(again.position, first.position);
  EXPECT_EQ(c->GetOrder("r1", again.position).order->lines.at(0).quantity, 2u);
}

TEST(Orders, ReusedCommandIdWithOtherCommandIsAnIdempotencyConflict) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->CreateOrder("o2", "alice", "cmd-1").ok());
  const CommandOutcome other_customer = c->CreateOrder("o2", "bob", "cmd-1");
  const CommandOutcome add_item = c->AddItem("o2", "apple", 1, 5, "cmd-1");
  for (const CommandOutcome& reused : {other_customer, add_item}) {
    EXPECT_EQ(reused.kind, CommandOutcome::Kind::kFailed);
    EXPECT_EQ(reused.code, "idempotency-conflict") << reused.message;
    EXPECT_NE(reused.message.find("command id 'cmd-1'"), std::string::npos) << reused.message;
    EXPECT_NE(reused.message.find("OrderCreated"), std::string::npos)
        << "what it was first used for: " << reused.message;
  }
  EXPECT_EQ(c->History("o2").size(), 1u) << "nothing was written";
  EXPECT_EQ(c->GetOrderAtVersion("o2", 0).order->customer_id, "alice");
}

TEST(Orders, ACommandIdUsedOnAnotherOrderIsAnIdempotencyConflict) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->CreateOrder("o1", "alice", "cmd-1").ok());
  auto reused = c->CreateOrder("o2", "alice", "cmd-1");
  EXPECT_EQ(reused.kind, CommandOutcome::Kind::kFailed);
  EXPECT_EQ(reused.code, "idempotency-conflict") << reused.message;
  EXPECT_NE(reused.message.find("command id 'cmd-1'"), std::string::npos) << reused.message;
  EXPECT_NE(reused.message.find("order-o1"), std::string::npos) << reused.message;
  EXPECT_TRUE(c->History("o2").empty());
}

TEST(Orders, APlainAppendToAnOrderStreamIsRefusedNamingWhatToUseInstead) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  auto r = c->Append("order-1", client::Expected::NoStream(), {client::NewEvent::Json("OrderCreated", "{}")});
  EXPECT_EQ(r.outcome, client::AppendResult::Outcome::kRejected);
  EXPECT_EQ(r.reject_code, "invalid-argument");
  EXPECT_NE(r.reason.find("reserved for the Order service"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("esctl order create"), std::string::npos) << r.reason;
  EXPECT_FALSE(c->GetStreamInfo("order-1").has_value()) << "nothing was written";
  ASSERT_TRUE(c->CreateOrder("1", "c-1").ok()) << "the order is the service's to create";
  ASSERT_TRUE(c->Append("cart-1", client::Expected::NoStream(), {client::NewEvent::Json("ItemAdded", "{}")}).ok());
}

TEST(Orders, AForeignEventInAnOrderStreamRefusesItsCommandsNamingWhereAndWhatNotAsDamage) {
  storage::testing::TempDir dir;
  testing::MakeStoreWithForeignOrderEvent(dir.path() / "data");  // written before the reservation
  EsdProcess esd(dir.path() / "data", testing::kSmallSegmentArgs);
  auto c = Client::Connect(esd.rpc_address());
  for (const CommandOutcome& o : {c->CreateOrder("1", "c-1"), c->CancelOrder("1", "")}) {
    EXPECT_EQ(o.kind, CommandOutcome::Kind::kRejected) << o.code << ": " << o.message;
    EXPECT_EQ(o.rule, "foreign-event");
    EXPECT_NE(o.message.find("version 0 (position 0)"), std::string::npos) << o.message;
    EXPECT_NE(o.message.find("type 'OrderCreated' (application/json)"), std::string::npos) << o.message;
    EXPECT_NE(o.message.find("esctl order create"), std::string::npos) << "what to do: " << o.message;
  }
  EXPECT_EQ(c->GetStreamInfo("order-1")->event_count, 1u) << "nothing was written";
  EXPECT_TRUE(c->CreateOrder("2", "c-1").ok());
  EXPECT_EQ(esd.Output().find("damage"), std::string::npos) << "the bytes verify: " << esd.Output();
}

TEST(Orders, QueriesLeaveForeignEventsOutAsTheProjectionDoesNotCallingThemDamage) {
  storage::testing::TempDir dir;
  testing::MakeStoreWithForeignOrderEvent(dir.path() / "data");
  EsdProcess esd(dir.path() / "data", testing::kSmallSegmentArgs);
  auto c = Client::Connect(esd.rpc_address());
  for (const auto& q : {c->GetOrderAtVersion("1", 0), c->GetOrderAtTime("1", UINT64_MAX / 2), c->GetOrder("1")}) {
    EXPECT_FALSE(q.damage.has_value()) << q.damage->ToString();
    EXPECT_FALSE(q.order.has_value()) << "the stream holds no event of the Order service";
  }
  const auto history = c->History("1");
  ASSERT_EQ(history.size(), 1u) << "the audit trail shows every event of the stream";
  EXPECT_EQ(history[0].type, "OrderCreated");
  EXPECT_EQ(history[0].json, "null") << "not an Order service event: no fields to show";
}

TEST(Orders, TheProjectionCountsForeignEventsInMetricsAndLogsTheFirst) {
  storage::testing::TempDir dir;
  testing::MakeStoreWithForeignOrderEvent(dir.path() / "data");
  EsdProcess esd(dir.path() / "data", testing::kSmallSegmentArgs);
  ASSERT_TRUE(esd.WaitForOutput("esd: the order projection skipped")) << esd.Output();
  EXPECT_NE(esd.Output().find("stream 'order-1' holds at version 0 (position 0) an event of type 'OrderCreated'"),
            std::string::npos)
      << esd.Output();
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("\nesd_projection_events_skipped_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("# TYPE esd_projection_events_skipped_total counter"), std::string::npos) << metrics;
}

TEST(Orders, MetricsSayHowOftenACommandFoundItsOrderInMemory) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->CreateOrder("m-1", "c-1").ok());  // a new order: nothing to find
  ASSERT_TRUE(c->AddItem("m-1", "sku-1", 1, 100).ok());
  ASSERT_TRUE(c->AddItem("m-1", "sku-2", 1, 100).ok());
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("\nesd_order_cache_hits_total 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nesd_order_cache_orders 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("# TYPE esd_order_cache_misses_total counter"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nesd_order_cache_evictions_total 0\n"), std::string::npos) << metrics;
}

TEST(Orders, AsyncCommandsOfManyClientsOnOneThreadAreAllSentBeforeAnyAnswerAndAnsweredAsTheSyncOnes) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(Client::Connect(esd.rpc_address()));
  kj::WaitScope& ws = clients[0]->wait_scope();  // the thread's loop, shared by its clients

  // Every create is sent before the loop runs for any answer.
  kj::Vector<kj::Promise<CommandOutcome>> creates;
  for (int i = 0; i < kClients; ++i) creates.add(clients[i]->CreateOrderAsync(Id("as", i), "ann", Id("create-", i)));
  auto created = kj::joinPromises(creates.releaseAsArray()).wait(ws);
  ASSERT_EQ(created.size(), static_cast<size_t>(kClients));
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(created[i].ok()) << created[i].message;
    EXPECT_EQ(created[i].version, 0u);
  }

  // Each client's chain: its next command when the previous answer arrives.
  kj::Vector<kj::Promise<CommandOutcome>> chains;
  for (int i = 0; i < kClients; ++i) {
    Client* c = clients[i].get();
    const std::string id = Id("as", i);
    chains.add(c->AddItemAsync(id, "apple", 2, 50).then([c, id](CommandOutcome added) {
      EXPECT_TRUE(added.ok()) << added.message;
      return c->PlaceOrderAsync(id, "place-" + id);
    }));
  }
  auto placed = kj::joinPromises(chains.releaseAsArray()).wait(ws);
  uint64_t last_position = 0;
  for (const CommandOutcome& p : placed) {
    ASSERT_TRUE(p.ok()) << p.message;
    EXPECT_EQ(p.version, 2u);
    last_position = std::max(last_position, p.position);
  }

  // The same outcomes as the synchronous calls: a retry, a rule by name, a removal.
  const CommandOutcome retry = clients[0]->PlaceOrderAsync("as0", "place-as0").wait(ws);
  EXPECT_TRUE(retry.already_applied);
  EXPECT_EQ(retry.version, 2u);
  const CommandOutcome late = clients[1]->AddItemAsync("as1", "pear", 1, 10).wait(ws);
  EXPECT_EQ(late.kind, CommandOutcome::Kind::kRejected);
  EXPECT_EQ(late.rule, "order-not-open") << late.message;
  const CommandOutcome gone = clients[2]->RemoveItemAsync("as2", "apple", 0).wait(ws);
  EXPECT_EQ(gone.rule, "order-not-open") << gone.message;
  const CommandOutcome cancelled = clients[3]->CancelOrderAsync("as3", "no longer needed", "cancel-as3").wait(ws);
  ASSERT_TRUE(cancelled.ok()) << cancelled.message;
  EXPECT_EQ(clients[3]->CancelOrder("as3", "again").rule, "order-already-cancelled");

  const auto seen = clients[0]->GetOrder("as5", last_position);
  ASSERT_TRUE(seen.order.has_value());
  EXPECT_EQ(seen.order->status, "placed");
  EXPECT_EQ(seen.order->total_cents, 100);
}

TEST(Orders, AnAsyncCommandOverALostConnectionRejectsWithWhatTheSyncCallThrows) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->CreateOrderAsync("gone", "ann").wait(c->wait_scope()).ok());
  esd.Kill();
  auto pending = c->AddItemAsync("gone", "apple", 1, 5);
  std::optional<client::Error> rejected;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] { pending.wait(c->wait_scope()); })) {
    rejected = client::ErrorOf(*e);
  }
  ASSERT_TRUE(rejected.has_value()) << "the promise is rejected, not answered";
  EXPECT_EQ(rejected->kind(), client::Error::Kind::kDisconnected) << rejected->what();
  try {
    c->AddItem("gone", "apple", 1, 5);
    ADD_FAILURE() << "the synchronous call throws";
  } catch (const client::Error& e) {
    EXPECT_EQ(e.kind(), rejected->kind()) << e.what();
  }
}

TEST(Orders, AReaderQueriesButCannotCommand) {
  storage::testing::TempDir dir;
  const auto auth = dir.path() / "auth";
  std::ofstream(auth) << "r reader\nw writer\n";
  EsdProcess esd(dir.path() / "data", {"--auth", auth.string()});
  auto w = Client::Connect(esd.rpc_address(), "w");
  auto created = w->CreateOrder("a1", "carol");
  ASSERT_TRUE(created.ok());
  auto r = Client::Connect(esd.rpc_address(), "r");
  auto refused = r->CreateOrder("a2", "carol");
  EXPECT_EQ(refused.kind, CommandOutcome::Kind::kFailed);
  EXPECT_EQ(refused.code, "permission-denied");
  auto seen = r->GetOrder("a1", created.position);
  ASSERT_FALSE(seen.timed_out);
  ASSERT_TRUE(seen.order.has_value()) << "a reader queries";
  EXPECT_EQ(seen.order->customer_id, "carol");
  EXPECT_EQ(w->History("a1").back().caused_by, "role:writer");
}

TEST(Orders, ListOrdersPagesEveryOrderOfACustomerOnce) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  uint64_t last = 0;
  for (int i = 0; i < 12; ++i) last = c->CreateOrder(Id("d", i), "dave").position;
  ASSERT_TRUE(c->AddItem("d3", "x", 1, 1).ok());
  auto placed = c->PlaceOrder("d3");
  std::set<std::string> seen;
  std::string token;
  do {
    auto page = c->ListOrders("dave", "", 5, token, last);
    ASSERT_FALSE(page.timed_out);
    for (const auto& o : page.orders) EXPECT_TRUE(seen.insert(o.order_id).second) << o.order_id;
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_EQ(seen.size(), 12u);
  auto only_placed = c->ListOrders("dave", "placed", 50, "", placed.position);
  ASSERT_EQ(only_placed.orders.size(), 1u);
  EXPECT_EQ(only_placed.orders[0].order_id, "d3");
}

TEST(Orders, ARestartInTheMiddleKeepsEveryOrderAndTheProjectionCatchesUp) {
  storage::testing::TempDir dir;
  {
    EsdProcess esd(dir.path() / "data");
    auto c = Client::Connect(esd.rpc_address());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->CreateOrder(Id("m", i), "erin").ok());
    ASSERT_TRUE(c->AddItem("m0", "x", 1, 100).ok());
    EXPECT_EQ(esd.Stop(SIGTERM), 0);  // the projection saves its snapshot
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "data" / "snapshots" / "projections" / "orders.snap"));
  uint64_t last = 0;
  {
    EsdProcess esd(dir.path() / "data");
    auto c = Client::Connect(esd.rpc_address());
    ASSERT_TRUE(c->PlaceOrder("m0").ok());
    last = c->CreateOrder("m5", "erin").position;
    esd.Kill();  // no snapshot this time: the next start catches up from the older one
  }
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  auto m0 = c->GetOrder("m0", last);
  ASSERT_FALSE(m0.timed_out);
  EXPECT_EQ(m0.order->status, "placed");
  EXPECT_EQ(c->ListOrders("erin", "", 50, "", last).orders.size(), 6u);
  EXPECT_EQ(c->AddItem("m0", "y", 1, 1).rule, "order-not-open") << "commands see the state from before the restart";
}

TEST(Orders, ASnapshotThatCannotBeUsedIsLoggedWithTheReasonAndCounted) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  const std::vector<std::string> every_two{"--snapshot-every", "2"};
  {
    EsdProcess esd(data, every_two);
    auto c = Client::Connect(esd.rpc_address());
    ASSERT_TRUE(c->CreateOrder("s1", "sam").ok());
    ASSERT_TRUE(c->AddItem("s1", "fig", 1, 10).ok());  // the order's snapshot
    ASSERT_EQ(esd.Stop(SIGTERM), 0);                    // the projection's
  }
  for (const auto& snap : {domain::ProjectionSnapshotPath(data), domain::OrderSnapshots(data).PathOf("order-s1")}) {
    storage::testing::FlipByte(snap, std::filesystem::file_size(snap) - 3);
  }
  EsdProcess esd(data, every_two);
  EXPECT_NE(esd.Output().find("the order projection's snapshot is not used (its body is damaged"), std::string::npos)
      << esd.Output();
  auto c = Client::Connect(esd.rpc_address());
  const auto added = c->AddItem("s1", "kiwi", 2, 20);
  ASSERT_TRUE(added.ok()) << "the order is read from its events instead";
  EXPECT_TRUE(esd.WaitForOutput("the snapshot of order-s1 is not used (its body is damaged")) << esd.Output();
  const std::string metrics = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(metrics.find("esd_snapshot_load_failures_total 2"), std::string::npos) << metrics;
  const auto s1 = c->GetOrder("s1", added.position);
  ASSERT_TRUE(s1.order.has_value());
  EXPECT_EQ(s1.order->total_cents, 10 + 2 * 20) << "the projection caught up from position 0";
}

TEST(Orders, ARebuildReplaysEverythingAndAnswersTheSameWhileServing) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c->CreateOrder(Id("b", i), "frank").ok());
    last = c->AddItem(Id("b", i), "x", 1 + i % 3, 10).position;
  }
  auto before = c->ListOrders("frank", "", 100, "", last);
  const uint64_t read = c->RebuildProjection("orders");
  EXPECT_EQ(read, last + 1) << "a rebuild replays $all from position 0";
  auto after = c->ListOrders("frank", "", 100, "", last);
  ASSERT_EQ(after.orders.size(), before.orders.size());
  for (size_t i = 0; i < after.orders.size(); ++i) {
    EXPECT_EQ(after.orders[i].order_id, before.orders[i].order_id);
    EXPECT_EQ(after.orders[i].total_cents, before.orders[i].total_cents);
    EXPECT_EQ(after.orders[i].version, before.orders[i].version);
  }
  EXPECT_THROW(c->RebuildProjection("nothing"), client::Error);
  ASSERT_TRUE(c->PlaceOrder("b0").ok()) << "and the service carries on";
}

}  // namespace
}  // namespace esd
