// esctl replay: online (the daemon keeps serving) and offline; the replayed projection
// equals the one esd built incrementally.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>

#include "client/client.h"
#include "domain/snapshots.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

std::string OrderId(int i) {
  std::string id = "r";
  id += std::to_string(i);
  return id;
}

void MakeOrders(const testing::EsdProcess& esd, int n) {
  auto c = client::Client::Connect(esd.rpc_address());
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(c->CreateOrder(OrderId(i), "cust-" + std::to_string(i % 3)).ok());
    ASSERT_TRUE(c->AddItem(OrderId(i), "sku", 1 + i % 4, 100).ok());
    if (i % 2 == 0) {
      ASSERT_TRUE(c->PlaceOrder(OrderId(i)).ok());
    }
  }
}

domain::ProjectionState Saved(const std::filesystem::path& data) {
  auto file = domain::ReadSnapshotFile(data / "snapshots" / "projections" / "orders.snap");
  EXPECT_TRUE(file.has_value());
  auto state = file ? domain::DecodeProjection(file->body) : std::nullopt;
  EXPECT_TRUE(state.has_value());
  if (!state) return {};
  std::sort(state->orders.begin(), state->orders.end(),
            [](const auto& a, const auto& b) { return a.order_id < b.order_id; });
  return *state;
}

TEST(EsctlReplay, OnlineReplayRebuildsWhileTheDaemonServes) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  MakeOrders(esd, 10);
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "replay", "orders"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("replayed orders: "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("replay: 100%"), std::string::npos) << "the daemon's progress, in events: " << r.err;
  EXPECT_NE(r.err.find(" events/s"), std::string::npos) << r.err;
  auto c = client::Client::Connect(esd.rpc_address());
  EXPECT_EQ(c->GetOrder("r3").order->status, "open") << "queries are answered by the rebuilt projection";
  const Result unknown = RunEsctl({"--connect", esd.rpc_address(), "replay", "nothing"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("unknown projection"), std::string::npos) << unknown.err;
}

TEST(EsctlReplay, OnlineReplayEqualsTheIncrementallyBuiltProjection) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  testing::EsdProcess esd(data);
  MakeOrders(esd, 30);
  const std::vector<std::string> save = {"--connect", esd.rpc_address(), "snapshot", "create", "--projection", "orders"};
  Result r = RunEsctl(save);  // the projection as esd built it, event by event
  ASSERT_EQ(r.code, 0) << r.err;
  const domain::ProjectionState incremental = Saved(data);
  r = RunEsctl({"--connect", esd.rpc_address(), "replay", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = RunEsctl(save);  // the rebuilt one, which answers queries now
  ASSERT_EQ(r.code, 0) << r.err;
  const domain::ProjectionState replayed = Saved(data);
  EXPECT_EQ(replayed.checkpoint, incremental.checkpoint);
  ASSERT_EQ(replayed.orders.size(), 30u);
  EXPECT_TRUE(replayed.orders == incremental.orders);
}

TEST(EsctlReplay, OfflineReplayEqualsTheIncrementallyBuiltProjection) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  {
    testing::EsdProcess esd(data);
    MakeOrders(esd, 25);
    ASSERT_EQ(esd.Stop(SIGTERM), 0);  // esd saves the projection it built incrementally
  }
  const domain::ProjectionState incremental = Saved(data);
  ASSERT_EQ(incremental.orders.size(), 25u);
  std::filesystem::remove(data / "snapshots" / "projections" / "orders.snap");
  const Result r = RunEsctl({"--data-dir", data.string(), "replay", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("replay: 100%"), std::string::npos) << r.err;
  const domain::ProjectionState replayed = Saved(data);
  EXPECT_EQ(replayed.checkpoint, incremental.checkpoint);
  ASSERT_EQ(replayed.orders.size(), incremental.orders.size());
  for (size_t i = 0; i < replayed.orders.size(); ++i) EXPECT_EQ(replayed.orders[i], incremental.orders[i]) << i;
  // esd starts from the replayed snapshot and answers from it.
  testing::EsdProcess again(data);
  EXPECT_EQ(client::Client::Connect(again.rpc_address())->GetOrder("r4").order->status, "placed");
}

TEST(EsctlReplay, OfflineReplayRefusesARunningDaemon) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  const Result r = RunEsctl({"--data-dir", (dir.path() / "data").string(), "replay", "orders"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("pid " + std::to_string(esd.pid())), std::string::npos) << r.err;
}

}  // namespace
}  // namespace esd
