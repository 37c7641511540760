// esctl snapshot list|show|create|delete: online against a running esd, which does the
// work itself, and with --data-dir on a stopped store. Both print the same.
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>

#include "client/client.h"
#include "domain/many_orders.h"
#include "domain/snapshots.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

class EsctlSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() / "data";
    testing::EsdProcess esd(data_);
    auto c = client::Client::Connect(esd.rpc_address());
    ASSERT_TRUE(c->CreateOrder("n1", "nina").ok());
    ASSERT_TRUE(c->AddItem("n1", "fig", 4, 25).ok());
    ASSERT_EQ(esd.Stop(SIGTERM), 0);  // leaves the projection's snapshot
  }
  Result Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data-dir", data_.string(), "snapshot"});
    return RunEsctl(args);
  }
  storage::testing::TempDir dir_;
  std::filesystem::path data_;
};

TEST_F(EsctlSnapshotTest, CreateListShowAndDeleteAnOrderSnapshot) {
  Result r = Ctl({"create", "order-n1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("order-n1 written at version 1"), std::string::npos) << r.out;
  r = Ctl({"list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("order-n1 at version 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("projection orders at checkpoint 2, 1 orders"), std::string::npos) << r.out;
  r = Ctl({"show", "order-n1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"customerId\":\"nina\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("{\"sku\":\"fig\",\"quantity\":4,\"unitPriceCents\":25}"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"totalCents\":100"), std::string::npos) << r.out;
  r = Ctl({"delete", "order-n1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Ctl({"show", "order-n1"}).code, 1);
  EXPECT_EQ(Ctl({"delete", "order-n1"}).code, 1) << "nothing left to delete";
}

TEST_F(EsctlSnapshotTest, TheProjectionSnapshotShowsEveryOrderAndIsRecreated) {
  Result r = Ctl({"show", "--projection", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("{\"projection\":\"orders\",\"checkpoint\":2,\"orders\":[{\"orderId\":\"n1\""), std::string::npos)
      << r.out;
  ASSERT_EQ(Ctl({"delete", "--projection", "orders"}).code, 0);
  r = Ctl({"create", "--projection", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("at checkpoint 2 (1 orders)"), std::string::npos) << r.out;
}

TEST_F(EsctlSnapshotTest, ADamagedSnapshotIsListedAsSuchAndUsageIsChecked) {
  const auto snap = data_ / "snapshots" / "projections" / "orders.snap";
  storage::testing::FlipByte(snap, std::filesystem::file_size(snap) - 5);
  Result r = Ctl({"list", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"ok\":false"), std::string::npos) << r.out;
  EXPECT_EQ(Ctl({"show", "--projection", "orders"}).code, 1);
  EXPECT_EQ(Ctl({"show", "not-an-order"}).code, 2);
  EXPECT_EQ(Ctl({"show", "order-n1", "--projection", "orders"}).code, 2);
  EXPECT_EQ(Ctl({"create", "--projection", "other"}).code, 2) << "there is one projection";
}

TEST_F(EsctlSnapshotTest, ASnapshotAheadOfTheLogIsListedAndRefusedWithTheReason) {
  // The projection's snapshot of a longer log, e.g. one whose end was salvaged away.
  const auto snap = data_ / "snapshots" / "projections" / "orders.snap";
  ASSERT_TRUE(domain::WriteSnapshotFile(snap, 1000, domain::EncodeProjection(1000, 1, {})).ok());
  Result r = Ctl({"list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("does not verify (it covers $all up to position 999, but the log ends at position 2: the "
                       "snapshot is ahead of the log)"),
            std::string::npos)
      << r.out;
  r = Ctl({"show", "--projection", "orders"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("ahead of the log"), std::string::npos) << r.err;
}

TEST_F(EsctlSnapshotTest, WhileEsdRunsTheFilesAreLeftAlone) {
  testing::EsdProcess esd(data_);
  const Result r = Ctl({"delete", "--projection", "orders"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("pid " + std::to_string(esd.pid())), std::string::npos) << r.err;
}

// Online: the same commands, asked of a running daemon.
class EsctlSnapshotOnlineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    esd_ = std::make_unique<testing::EsdProcess>(dir_.path() / "data");
    client_ = client::Client::Connect(esd_->rpc_address());
    ASSERT_TRUE(client_->CreateOrder("n1", "nina").ok());
    const auto added = client_->AddItem("n1", "fig", 4, 25);
    ASSERT_TRUE(added.ok());
    ASSERT_TRUE(client_->GetOrder("n1", added.position).order.has_value()) << "the projection has applied it";
  }
  Result Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--connect", esd_->rpc_address(), "snapshot"});
    return RunEsctl(args);
  }
  storage::testing::TempDir dir_;
  std::unique_ptr<testing::EsdProcess> esd_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(EsctlSnapshotOnlineTest, CreateListShowAndDeleteWhileTheDaemonServes) {
  Result r = Ctl({"create", "order-n1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("snapshot of order-n1 written at version 1"), std::string::npos) << r.out;
  r = Ctl({"list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("order-n1 at version 1"), std::string::npos) << r.out;
  r = Ctl({"show", "order-n1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("{\"sku\":\"fig\",\"quantity\":4,\"unitPriceCents\":25}"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"totalCents\":100"), std::string::npos) << r.out;
  r = Ctl({"delete", "order-n1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("deleted snapshots/orders/"), std::string::npos) << r.out;
  r = Ctl({"show", "order-n1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("order-n1 has no snapshot yet"), std::string::npos) << r.err;
  EXPECT_EQ(Ctl({"delete", "order-n1"}).code, 1) << "nothing left to delete";
  r = Ctl({"create", "order-nobody"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no events"), std::string::npos) << r.err;
}

TEST_F(EsctlSnapshotOnlineTest, AnOrderLoadsFromItsEventsOnceItsSnapshotIsDeleted) {
  ASSERT_EQ(Ctl({"create", "order-n1"}).code, 0);
  ASSERT_EQ(Ctl({"delete", "order-n1"}).code, 0);
  const auto more = client_->AddItem("n1", "fig", 1, 25);
  ASSERT_TRUE(more.ok()) << more.message;
  EXPECT_EQ(more.version, 2u);
  const auto now = client_->GetOrder("n1", more.position);
  ASSERT_TRUE(now.order.has_value());
  EXPECT_EQ(now.order->total_cents, 125);
}

TEST_F(EsctlSnapshotOnlineTest, TheProjectionSnapshotIsTheRunningProjectionAtItsCheckpoint) {
  Result r = Ctl({"--json", "create", "--projection", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"projection\":\"orders\",\"checkpoint\":2,\"orders\":1"), std::string::npos) << r.out;
  r = Ctl({"show", "--projection", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("{\"projection\":\"orders\",\"checkpoint\":2,\"orders\":[{\"orderId\":\"n1\""), std::string::npos)
      << r.out;
}

TEST_F(EsctlSnapshotOnlineTest, ADamagedSnapshotIsListedAsSuchAndNotShown) {
  ASSERT_EQ(Ctl({"create", "order-n1"}).code, 0);
  const auto file = domain::OrderSnapshots(dir_.path() / "data").PathOf("order-n1");
  storage::testing::FlipByte(file, std::filesystem::file_size(file) - 3);
  Result r = Ctl({"--json", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"ok\":false"), std::string::npos) << r.out;
  r = Ctl({"show", "order-n1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("does not verify"), std::string::npos) << r.err;
}

TEST_F(EsctlSnapshotOnlineTest, ASnapshotAheadOfTheLogIsListedAndRefusedWithTheReason) {
  ASSERT_EQ(Ctl({"create", "order-n1"}).code, 0);
  // The snapshot of a longer order-n1, e.g. from before its stream's end was salvaged away.
  const domain::OrderSnapshots snaps(dir_.path() / "data");
  const auto file = domain::ReadSnapshotFile(snaps.PathOf("order-n1"));
  ASSERT_TRUE(file.has_value());
  auto state = domain::DecodeOrderSnapshot(file->body).value();
  state.version = 40;
  ASSERT_TRUE(domain::WriteSnapshotFile(snaps.PathOf("order-n1"), 40, domain::EncodeOrderSnapshot(state)).ok());
  Result r = Ctl({"--json", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"ok\":false,\"problem\":\"it covers order-n1 up to version 40, but the log holds it up to "
                       "version 1: the snapshot is ahead of the log\""),
            std::string::npos)
      << r.out;
  r = Ctl({"show", "order-n1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("ahead of the log"), std::string::npos) << r.err;
}

TEST(EsctlSnapshotLarge, OnlineAProjectionSnapshotOver48MiBIsShownWhole) {
  // More than one message holds (capnp's 64 MiB limit): the daemon sends it in pages.
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  const auto snap = domain::ProjectionSnapshotPath(data);
  {
    testing::EsdProcess esd(data);
    ASSERT_TRUE(client::Client::Connect(esd.rpc_address())
                    ->Append("audit-log", client::Expected::Any(), {client::NewEvent::Json("E", "{}")})
                    .ok());
    ASSERT_EQ(esd.Stop(SIGTERM), 0);  // the projection's snapshot, at checkpoint 1
  }
  const auto written = domain::DecodeProjection(domain::ReadSnapshotFile(snap).value().body).value();
  const std::vector<domain::OrderState> orders = domain::testing::ManyOrders(80'000);
  ASSERT_TRUE(domain::WriteSnapshotFile(snap, written.checkpoint,
                                        domain::testing::EncodeProjectionOf(written.checkpoint,
                                                                            written.last_timestamp, orders))
                  .ok());
  ASSERT_GT(std::filesystem::file_size(snap), 48u << 20);

  testing::EsdProcess esd(data);
  EXPECT_EQ(esd.Output().find("snapshot is not used"), std::string::npos) << esd.Output();
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "snapshot", "show", "--projection", "orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"projection\":\"orders\",\"checkpoint\":1,\"orders\":[", 0), 0u) << r.out.substr(0, 200);
  size_t shown = 0;
  for (size_t at = r.out.find("\"orderId\":"); at != std::string::npos; at = r.out.find("\"orderId\":", at + 1)) ++shown;
  EXPECT_EQ(shown, orders.size());
  EXPECT_NE(r.out.find("\"orderId\":\"m79999\""), std::string::npos);
}

TEST_F(EsctlSnapshotOnlineTest, UsageIsCheckedBeforeConnecting) {
  const Result r = RunEsctl({"--connect", "127.0.0.1:1", "snapshot", "show", "not-an-order"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("order stream"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace esd
