// Forgetting a customer (issue 13, GDPR) end to end through a real esd: admin only; the
// orders leave every query and load at once and stay gone across a restart and a rebuild;
// other customers are untouched; an audit record without personal data stays; and after a
// scavenge no byte of the customer's id is left in any file of the data directory.
#include <gtest/gtest.h>

#include <future>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "domain/erasure.h"
#include "domain/snapshots.h"
#include "server/esd_process.h"
#include "storage/store.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::CommandOutcome;
using testing::EsdProcess;

// "o" + std::to_string(i) trips g++ 12's -Wrestrict false positive (GCC bug 105329).
std::string Id(const char* prefix, int i) {
  std::string id = prefix;
  id += std::to_string(i);
  return id;
}

std::string FileBytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Every regular file under `dir` (segments, spares, index files, snapshots, LOCK, anything)
// that holds `needle`, relative to `dir`.
std::vector<std::string> FilesHolding(const std::filesystem::path& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    if (FileBytes(entry.path()).find(needle) != std::string::npos) {
      found.push_back(std::filesystem::relative(entry.path(), dir).string());
    }
  }
  return found;
}

// An order of `customer` with one line; its position.
uint64_t Order(Client& c, const std::string& id, const std::string& customer) {
  auto created = c.CreateOrder(id, customer);
  EXPECT_TRUE(created.ok()) << created.message;
  auto added = c.AddItem(id, "sku-1", 2, 150);
  EXPECT_TRUE(added.ok()) << added.message;
  return added.position;
}

std::vector<std::string> Listed(Client& c, const std::string& customer) {
  std::vector<std::string> ids;
  for (const auto& o : c.ListOrders(customer, "", 1000).orders) ids.push_back(o.order_id);
  return ids;
}

// The audit record at `position`, read back through $all.
std::optional<client::RecordedEvent> EventAt(Client& c, uint64_t position) {
  auto page = c.ReadAll(position, 1);
  if (page.events.empty() || page.events[0].position != position) return std::nullopt;
  return page.events[0];
}

std::filesystem::path WriteAuthFile(const std::filesystem::path& dir) {
  const auto path = dir / "tokens";
  std::ofstream(path) << "r-token reader\nw-token writer\na-token admin\n";
  return path;
}

TEST(ForgetCustomer, OnlyAnAdminMayForgetAndARefusalChangesNothing) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--auth", WriteAuthFile(dir.path()).string()});
  auto writer = Client::Connect(esd.rpc_address(), "w-token");
  const uint64_t at = Order(*writer, "o1", "alice");
  for (const char* token : {"r-token", "w-token"}) {
    auto c = Client::Connect(esd.rpc_address(), token);
    const auto refused = c->ForgetCustomer("alice");
    EXPECT_FALSE(refused.ok) << token;
    EXPECT_EQ(refused.code, "permission-denied") << token;
    EXPECT_NE(refused.message.find("needs admin"), std::string::npos) << refused.message;
  }
  EXPECT_TRUE(writer->GetOrder("o1", at).order.has_value());
  EXPECT_EQ(writer->ReadStream("order-o1", 0, 10)->size(), 2u);
  EXPECT_FALSE(writer->GetStreamInfo("$erasures").has_value()) << "a refusal is not audited: nothing was done";
  auto admin = Client::Connect(esd.rpc_address(), "a-token");
  const auto done = admin->ForgetCustomer("alice");
  ASSERT_TRUE(done.ok) << done.code << ": " << done.message;
  EXPECT_EQ(done.streams_deleted, 1u);
}

TEST(ForgetCustomer, TheOrdersLeaveEveryQueryAndLoadAtOnceAndOtherCustomersStay) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  for (int i = 0; i < 3; ++i) Order(*c, Id("a", i), "alice");
  const uint64_t last = Order(*c, "b0", "bob");
  ASSERT_TRUE(c->PlaceOrder("a1").ok());
  ASSERT_EQ(Listed(*c, "alice").size(), 3u);
  ASSERT_TRUE(c->GetOrder("b0", last).order.has_value());

  const auto forgot = c->ForgetCustomer("alice");
  ASSERT_TRUE(forgot.ok) << forgot.code << ": " << forgot.message;
  EXPECT_EQ(forgot.streams_deleted, 3u);
  // At once: no min_position, no waiting for the projection.
  EXPECT_TRUE(Listed(*c, "alice").empty());
  for (int i = 0; i < 3; ++i) {
    const std::string id = Id("a", i);
    EXPECT_FALSE(c->GetOrder(id).order.has_value()) << id;
    EXPECT_FALSE(c->GetOrderAtVersion(id, 1).order.has_value()) << id;
    EXPECT_FALSE(c->GetOrderAtTime(id, UINT64_MAX).order.has_value()) << id;
    EXPECT_TRUE(c->History(id).empty()) << id;
    EXPECT_EQ(c->AddItem(id, "sku-2", 1, 1).rule, "order-not-found") << id;
    EXPECT_EQ(c->CreateOrder(id, "alice").rule, "order-deleted") << id;
  }
  EXPECT_EQ(Listed(*c, "bob"), std::vector<std::string>{"b0"});
  const auto bob = c->GetOrder("b0");
  ASSERT_TRUE(bob.order.has_value());
  EXPECT_EQ(bob.order->lines.size(), 1u);
  EXPECT_TRUE(c->AddItem("b0", "sku-2", 1, 1).ok());

  // The audit record: when, which role, how many; no customer id, no order id.
  const auto audit = EventAt(*c, forgot.audit_position);
  ASSERT_TRUE(audit.has_value());
  EXPECT_EQ(audit->stream, "$erasures");
  EXPECT_EQ(audit->type, "CustomerForgotten");
  const auto record = domain::DecodeCustomerForgotten(audit->data);
  ASSERT_TRUE(record.has_value()) << audit->data;
  EXPECT_EQ(record->role, "admin");
  EXPECT_EQ(record->streams_deleted, 3u);
  EXPECT_GT(record->at_micros, 0u);
  for (const std::string& personal : {std::string("alice"), Id("a", 0), Id("a", 1), Id("a", 2)}) {
    EXPECT_EQ(audit->data.find(personal), std::string::npos) << personal;
    EXPECT_EQ(audit->metadata.find(personal), std::string::npos) << personal;
  }
  EXPECT_EQ(esd.Output().find("alice"), std::string::npos) << "the daemon's log does not name the customer";

  // Again: nothing left to delete, and audited again.
  const auto again = c->ForgetCustomer("alice");
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_EQ(again.streams_deleted, 0u);
  EXPECT_GT(again.audit_position, forgot.audit_position);
  EXPECT_EQ(domain::DecodeCustomerForgotten(EventAt(*c, again.audit_position)->data)->streams_deleted, 0u);
}

TEST(ForgetCustomer, ACustomerWithoutOrdersIsAuditedAndAnEmptyIdIsRefused) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  const auto none = c->ForgetCustomer("nobody");
  ASSERT_TRUE(none.ok) << none.message;
  EXPECT_EQ(none.streams_deleted, 0u);
  EXPECT_EQ(EventAt(*c, none.audit_position)->type, "CustomerForgotten");
  const auto empty = c->ForgetCustomer("");
  EXPECT_FALSE(empty.ok);
  EXPECT_EQ(empty.code, "invalid-argument");
  EXPECT_NE(empty.message.find("must not be empty"), std::string::npos) << empty.message;
  EXPECT_EQ(c->GetStreamInfo("$erasures")->event_count, 1u) << "the refusal wrote nothing";
}

TEST(ForgetCustomer, ARestartWithOrWithoutAGracefulStopAndARebuildDoNotBringThemBack) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  const std::string customer = "cust-restart-8812";
  {
    EsdProcess esd(data, {"--snapshot-every", "2"});
    auto c = Client::Connect(esd.rpc_address());
    Order(*c, "r1", customer);
    Order(*c, "r2", "carol");
    // The projection's snapshot and the orders' snapshots hold the customer before.
    ASSERT_TRUE(c->CreateSnapshot(Client::SnapshotTarget::Projection("orders")).has_value());
    ASSERT_FALSE(FilesHolding(data / "snapshots", customer).empty());
    const auto forgot = c->ForgetCustomer(customer);
    ASSERT_TRUE(forgot.ok) << forgot.message;
    EXPECT_EQ(forgot.streams_deleted, 1u);
    EXPECT_EQ(FilesHolding(data / "snapshots", customer), std::vector<std::string>{})
        << "the orders' snapshots are deleted and the projection's is written without them";
    esd.Kill();  // no graceful stop: what forget wrote must hold by itself
  }
  {
    EsdProcess esd(data);
    auto c = Client::Connect(esd.rpc_address());
    EXPECT_TRUE(Listed(*c, customer).empty());
    EXPECT_FALSE(c->GetOrder("r1").order.has_value());
    EXPECT_TRUE(c->GetOrder("r2").order.has_value());
    EXPECT_TRUE(c->History("r1").empty());
    ASSERT_EQ(esd.Stop(SIGTERM), 0);  // the projection saves its snapshot
  }
  {
    EsdProcess esd(data);
    auto c = Client::Connect(esd.rpc_address());
    EXPECT_TRUE(Listed(*c, customer).empty());
    c->RebuildProjection("orders");
    EXPECT_TRUE(Listed(*c, customer).empty());
    EXPECT_FALSE(c->GetOrder("r1").order.has_value());
    EXPECT_EQ(Listed(*c, "carol"), std::vector<std::string>{"r2"});
  }
  EXPECT_EQ(FilesHolding(data / "snapshots", customer), std::vector<std::string>{});
}

// The acceptance test: the customer's orders lie in sealed segments and in the active
// one, among other traffic; after forget-customer and one scavenge, no file of the data
// directory holds the customer's id. (The scavenge runs in-process on the stopped store:
// Store::StartScavenge, then GetScavengeStatus until it has finished.)
TEST(ForgetCustomer, AfterAScavengeNoByteOfTheCustomerIsLeftInTheDataDirectory) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  const std::string customer = "cust-zq7x-4471-forgetme";
  std::vector<std::string> orders;
  {
    EsdProcess esd(data, {"--segment-size", "65536", "--max-event-size", "16384", "--snapshot-every", "3"});
    auto c = Client::Connect(esd.rpc_address());
    // About 300 events fill a 64 KiB segment: the customer's orders spread over several.
    for (int i = 0; i < 40; ++i) {
      for (int j = 0; j < 8; ++j) Order(*c, Id("other-", i * 8 + j), Id("someone-", j));
      if (i % 5 == 0) {
        const std::string id = Id("f", i);
        orders.push_back(id);
        Order(*c, id, customer);
        ASSERT_TRUE(c->AddItem(id, "sku-9", 1, 10).ok());  // 3 events: a snapshot
      }
    }
    const std::string last = "f-last";  // in the active segment
    orders.push_back(last);
    Order(*c, last, customer);
    ASSERT_TRUE(c->CreateSnapshot(Client::SnapshotTarget::Projection("orders")).has_value());

    // Before: the id is in several segments, the last (active) one among them, and in snapshots.
    std::vector<std::string> segments;
    for (const auto& f : FilesHolding(data, customer)) {
      if (f.rfind("segments/", 0) == 0 && f.size() > 4 && f.substr(f.size() - 4) == ".seg") segments.push_back(f);
    }
    ASSERT_GE(segments.size(), 3u);
    std::string newest;
    for (const auto& e : std::filesystem::directory_iterator(data / "segments")) {
      if (e.path().extension() == ".seg") newest = std::max(newest, e.path().filename().string());
    }
    EXPECT_NE(std::find(segments.begin(), segments.end(), "segments/" + newest), segments.end())
        << "the active segment holds some of the customer's orders";
    ASSERT_FALSE(FilesHolding(data / "snapshots", customer).empty());

    const auto forgot = c->ForgetCustomer(customer);
    ASSERT_TRUE(forgot.ok) << forgot.message;
    EXPECT_EQ(forgot.streams_deleted, orders.size());
    EXPECT_TRUE(Listed(*c, customer).empty());
    for (int j = 0; j < 8; ++j) EXPECT_EQ(Listed(*c, Id("someone-", j)).size(), 40u);
    ASSERT_EQ(esd.Stop(SIGTERM), 0);
  }
  // Before the scavenge, only the log's segment files hold the (unreadable) events.
  for (const auto& f : FilesHolding(data, customer)) {
    EXPECT_TRUE(f.rfind("segments/", 0) == 0 && f.substr(f.size() - 4) == ".seg") << f;
  }
  {
    // The store tells its listener when the scavenge has ended: that is the barrier.
    struct Finished : storage::EventListener {
      std::promise<storage::ScavengeStatus> done;
      void OnScavengeFinished(const storage::ScavengeStatus& s) override { done.set_value(s); }
    } finished;
    storage::Options options;
    options.listener = &finished;
    auto store = storage::Store::Open(data, options).value();
    const storage::Status started = store->StartScavenge();
    ASSERT_TRUE(started.ok()) << started.ToString();
    const storage::ScavengeStatus status = finished.done.get_future().get();
    ASSERT_EQ(status.state, storage::ScavengeStatus::State::kFinished) << status.error.ToString();
    EXPECT_GT(status.events_removed, 0u);
  }
  EXPECT_EQ(FilesHolding(data, customer), std::vector<std::string>{});
  // The orders' ids stay only in the tombstones' stream names ("$$order-<id>"), never with
  // the customer; the audit record holds neither.
  {
    EsdProcess esd(data);
    auto c = Client::Connect(esd.rpc_address());
    EXPECT_TRUE(Listed(*c, customer).empty());
    for (const auto& id : orders) EXPECT_FALSE(c->GetOrder(id).order.has_value()) << id;
    EXPECT_EQ(Listed(*c, "someone-3").size(), 40u);
    auto erasures = c->ReadStream("$erasures", 0, 10);
    ASSERT_TRUE(erasures.has_value());
    ASSERT_EQ(erasures->size(), 1u);
    for (const auto& id : orders) EXPECT_EQ((*erasures)[0].data.find(id), std::string::npos);
    EXPECT_EQ((*erasures)[0].data.find(customer), std::string::npos);
  }
}

}  // namespace
}  // namespace esd
