// Damage in the log end to end through a real esd: a flipped byte inside a sealed segment
// is a typed answer naming its file, offset and position to every caller whose request
// needs it (stream and $all reads, subscriptions, order queries and commands), is counted
// in /metrics and logged once, and the rest of the store keeps serving.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "client/client.h"
#include "server/damaged_store.h"
#include "server/esd_process.h"
#include "storage/store.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::Damage;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;
using namespace std::chrono_literals;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class DamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::MakeDamagedStore(data_);
    esd_ = std::make_unique<EsdProcess>(data_, testing::kSmallSegmentArgs);
    client_ = Client::Connect(esd_->rpc_address());
  }

  void ExpectTheDamage(const Damage& d) {
    EXPECT_EQ(d.file, store_.damaged_file);
    EXPECT_EQ(d.offset, store_.damaged_offset);
    ASSERT_TRUE(d.position.has_value());
    EXPECT_EQ(*d.position, store_.damaged_position);
    EXPECT_NE(d.reason.find("does not verify"), std::string::npos) << d.reason;
  }

  storage::testing::TempDir dir_;
  const std::filesystem::path data_ = dir_.path() / "data";
  testing::DamagedStore store_;
  std::unique_ptr<EsdProcess> esd_;
  std::unique_ptr<Client> client_;
};

TEST_F(DamageTest, AStreamReadThatReachesDamageGetsItsFileOffsetAndPosition) {
  try {
    client_->ReadStream("order-o-damaged", 0, 1000);
    FAIL() << "the read passed the damage";
  } catch (const client::Error& e) {
    EXPECT_EQ(e.kind(), client::Error::Kind::kDamaged) << e.what();
    ASSERT_TRUE(e.damage().has_value());
    ExpectTheDamage(*e.damage());
    EXPECT_NE(std::string(e.what()).find(store_.Place()), std::string::npos) << e.what();
  }
}

TEST_F(DamageTest, OnlyTheDamagedBatchIsRefused) {
  // "victim" has events before and after the damaged batch in the same segment: all served.
  const auto victim = client_->ReadStream("victim", 0, 1000);
  ASSERT_TRUE(victim.has_value());
  EXPECT_EQ(victim->size(), 300u);
  const auto after = client_->ReadAll(store_.damaged_position + 1, 10'000);
  EXPECT_FALSE(after.damage.has_value());
  ASSERT_FALSE(after.events.empty());
  EXPECT_EQ(after.events.front().position, store_.damaged_position + 1);
}

TEST_F(DamageTest, ReadAllAnswersTheEventsBeforeTheDamageThenTheDamage) {
  const auto r = client_->ReadAll(0, 10'000);
  ASSERT_TRUE(r.damage.has_value());
  ExpectTheDamage(*r.damage);
  ASSERT_EQ(r.events.size(), store_.damaged_position);
  for (uint64_t i = 0; i < r.events.size(); ++i) ASSERT_EQ(r.events[i].position, i);
  EXPECT_EQ(r.next_position, store_.damaged_position);
  EXPECT_FALSE(r.end_of_log);

  const auto again = client_->ReadAll(r.next_position, 10'000);
  EXPECT_TRUE(again.events.empty());
  ASSERT_TRUE(again.damage.has_value()) << "continuing from there meets the same damage";
  EXPECT_EQ(again.damage->position, store_.damaged_position);
}

TEST_F(DamageTest, TheRestOfTheStoreKeepsServing) {
  auto intact = client_->ReadStream("intact", 0, 1000);
  ASSERT_TRUE(intact.has_value());
  EXPECT_EQ(intact->size(), store_.intact_events);
  const auto tail = client_->ReadAll(store_.events - 2, 10);
  EXPECT_FALSE(tail.damage.has_value());
  EXPECT_EQ(tail.events.size(), 2u);
  EXPECT_TRUE(tail.end_of_log);
  auto appended = client_->Append("intact", Expected::Exact(store_.intact_events - 1), {NewEvent::Json("E", "{}")});
  EXPECT_TRUE(appended.ok()) << appended.reason;
  EXPECT_EQ(client_->ReadStream("intact", 0, 1000)->size(), store_.intact_events + 1);
}

TEST_F(DamageTest, MetricsCountTheDamagedBatchOnce) {
  EXPECT_THROW(client_->ReadStream("order-o-damaged", 0, 1000), client::Error);
  EXPECT_TRUE(client_->ReadAll(0, 10'000).damage.has_value());
  const std::string metrics = testing::HttpGet(esd_->http_address(), "/metrics");
  EXPECT_NE(metrics.find("# TYPE esd_corruption_found_total counter\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nesd_corruption_found_total 1\n"), std::string::npos) << metrics;
}

TEST_F(DamageTest, ASubscriptionFromZeroIsDroppedAtTheDamageNamingIt) {
  std::vector<uint64_t> positions;
  bool caught_up = false;
  std::optional<std::string> dropped;
  auto sub = client_->Subscribe(
      client::SubscribeFrom::Start(), {},
      [&](const std::vector<client::RecordedEvent>& batch) {
        for (const auto& e : batch) positions.push_back(e.position);
      },
      [&](uint64_t) { caught_up = true; }, [&](const std::string& reason) { dropped = reason; });
  ASSERT_TRUE(client_->RunUntil([&] { return dropped.has_value(); }, 60s)) << positions.size() << " events";
  EXPECT_FALSE(caught_up) << "it must not end as if the log ended there";
  ASSERT_EQ(positions.size(), store_.damaged_position) << "everything before the damage came first";
  for (uint64_t i = 0; i < positions.size(); ++i) ASSERT_EQ(positions[i], i);
  EXPECT_NE(dropped->find(store_.Place()), std::string::npos) << *dropped;
  ASSERT_TRUE(sub->damage().has_value());
  ExpectTheDamage(*sub->damage());
}

TEST_F(DamageTest, AStreamSubscriptionThatReachesDamageIsDroppedNamingIt) {
  std::optional<std::string> dropped;
  bool caught_up = false;
  auto sub = client_->Subscribe(
      client::SubscribeFrom::Stream("order-o-damaged", 0), {}, [](const std::vector<client::RecordedEvent>&) {},
      [&](uint64_t) { caught_up = true; }, [&](const std::string& reason) { dropped = reason; });
  ASSERT_TRUE(client_->RunUntil([&] { return dropped.has_value(); }, 60s));
  EXPECT_FALSE(caught_up);
  EXPECT_NE(dropped->find(store_.Place()), std::string::npos) << *dropped;
  ASSERT_TRUE(sub->damage().has_value());
  ExpectTheDamage(*sub->damage());
}

TEST_F(DamageTest, OrderReadsAndCommandsAreRefusedAsDataLossNamingTheDamage) {
  const auto as_of = client_->GetOrderAtVersion("o-damaged", 0);
  EXPECT_FALSE(as_of.order.has_value());
  ASSERT_TRUE(as_of.damage.has_value());
  ExpectTheDamage(*as_of.damage);

  try {
    client_->History("o-damaged");
    FAIL() << "the history passed the damage";
  } catch (const client::Error& e) {
    EXPECT_EQ(e.kind(), client::Error::Kind::kDamaged) << e.what();
    ASSERT_TRUE(e.damage().has_value());
    ExpectTheDamage(*e.damage());
  }

  const auto command = client_->AddItem("o-damaged", "plum", 1, 10, "add-plum");
  EXPECT_EQ(command.kind, client::CommandOutcome::Kind::kFailed);
  EXPECT_EQ(command.code, "data-loss") << command.message;
  ASSERT_TRUE(command.damage.has_value());
  ExpectTheDamage(*command.damage);
  EXPECT_NE(command.message.find(store_.Place()), std::string::npos) << command.message;

  // An order outside the damaged segment takes commands and reads from its stream.
  const auto other = client_->AddItem("o-intact", "plum", 1, 10, "add-plum-intact");
  ASSERT_TRUE(other.ok()) << other.code << ": " << other.message;
  EXPECT_EQ(client_->History("o-intact").size(), 3u);
  ASSERT_TRUE(client_->GetOrderAtVersion("o-intact", 2).order.has_value());
}

TEST_F(DamageTest, TheProjectionStopsAtTheDamageAndAnswersFromWhatItApplied) {
  // Below the damage: what the projection applied before it.
  const auto before = client_->GetOrder("o-damaged");
  ASSERT_TRUE(before.order.has_value());
  EXPECT_EQ(before.order->status, "open");
  EXPECT_LT(before.order->last_position, store_.damaged_position);
  // At or past it: refused at once, not after a wait for what cannot come.
  const auto later = client_->GetOrder("o-intact", store_.intact_order_position);
  EXPECT_FALSE(later.timed_out);
  ASSERT_TRUE(later.damage.has_value());
  ExpectTheDamage(*later.damage);
  const auto page = client_->ListOrders("dave", "", 10, "", store_.intact_order_position);
  EXPECT_FALSE(page.timed_out);
  ASSERT_TRUE(page.damage.has_value());
  EXPECT_EQ(page.damage->position, store_.damaged_position);
  EXPECT_EQ(client_->Status().projection_checkpoint, store_.damaged_position);

  // A rebuild meets the same damage: it fails saying where, and the running projection stays.
  try {
    client_->RebuildProjection("orders");
    FAIL() << "the rebuild passed the damage";
  } catch (const client::Error& e) {
    EXPECT_NE(std::string(e.what()).find("the log is damaged at " + store_.Place()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(client_->GetOrder("o-damaged").order.has_value());
}

TEST_F(DamageTest, ReadyNamesTheDamageTheProjectionStoppedAtAndTheWayOn) {
  // A query past the damage is answered once the projection has stopped there: a barrier.
  ASSERT_TRUE(client_->GetOrder("o-intact", store_.intact_order_position).damage.has_value());
  const std::string ready = testing::HttpGet(esd_->http_address(), "/ready");
  EXPECT_NE(ready.find("503"), std::string::npos) << ready;
  EXPECT_NE(ready.find("the order projection stopped at damaged bytes of the log: " + store_.Place()),
            std::string::npos)
      << ready;
  EXPECT_NE(ready.find("order queries answer as of position " + std::to_string(store_.damaged_position)),
            std::string::npos)
      << ready;
  EXPECT_NE(ready.find("esctl --data-dir DIR verify"), std::string::npos) << ready;
  EXPECT_NE(ready.find("esctl --data-dir DIR salvage"), std::string::npos) << ready;
  EXPECT_NE(testing::HttpGet(esd_->http_address(), "/health").find("200"), std::string::npos) << "still alive";
}

TEST_F(DamageTest, TheDaemonLogsEachPlaceOnceAndKeepsRunning) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(client_->ReadStream("order-o-damaged", 0, 1000), client::Error);
    EXPECT_TRUE(client_->ReadAll(0, 10'000).damage.has_value());
  }
  EXPECT_TRUE(client_->ReadStream("intact", 0, 10).has_value());  // answered after the log lines
  const std::string log = esd_->Output();
  EXPECT_EQ(Count(log, "esd: damage found by "), 1u) << log;
  EXPECT_EQ(Count(log, store_.Place()), 1u) << log;
  EXPECT_EQ(Count(log, "the order projection stopped at position " + std::to_string(store_.damaged_position)), 1u)
      << log;
  EXPECT_EQ(esd_->Stop(SIGTERM), 0) << esd_->Output();
}

TEST(DamageAtStart, TheDaemonPrintsWhatRecoveryRepaired) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  {
    auto store = storage::Store::Open(data, storage::testing::SmallOptions()).value();
    for (uint64_t i = 0; i < 200; ++i) {
      ASSERT_TRUE(store->AppendSync("s", storage::ExpectedVersion::Any(),
                                    storage::testing::MakeEvents("s", i, 1, 0, 400)).ok());
    }
  }
  auto idx = storage::testing::SegmentFiles(data)[0];
  idx.replace_extension(".idx");
  ASSERT_TRUE(std::filesystem::remove(idx));
  EsdProcess esd(data, testing::kSmallSegmentArgs);
  const std::string log = esd.Output();
  EXPECT_NE(log.find("esd: recovery: segments/" + idx.filename().string()), std::string::npos) << log;
  EXPECT_EQ(Client::Connect(esd.rpc_address())->ReadStream("s", 0, 1000)->size(), 200u);
}

}  // namespace
}  // namespace esd
