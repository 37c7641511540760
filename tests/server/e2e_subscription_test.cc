// Catch-up subscriptions end to end: from 0 while writers run (no gap, no duplicate at the
// switch to live), filters, cancellation, and a stalled subscriber that must not hold up
// appends.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <set>
#include <thread>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::Expected;
using client::NewEvent;
using client::RecordedEvent;
using client::SubscribeFrom;
using testing::EsdProcess;
using namespace std::chrono_literals;

std::unique_ptr<Client> Connect(const EsdProcess& esd) { return Client::Connect(esd.rpc_address()); }

void AppendMany(const EsdProcess& esd, const std::string& prefix, int appends, int per_append) {
  auto c = Connect(esd);
  for (int i = 0; i < appends; ++i) {
    std::vector<NewEvent> events;
    for (int k = 0; k < per_append; ++k) events.push_back(NewEvent::Json(k % 2 ? "Odd" : "Even", "{}"));
    auto r = c->Append(prefix + std::to_string(i % 4), Expected::Any(), events);
    ASSERT_TRUE(r.ok()) << r.reason;
  }
}

TEST(Subscriptions, FromZeroTurnsLiveWithoutGapOrDuplicateWhileWritersRun) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "before-", 200, 5);  // a past to catch up on: 1000 events
  std::thread writer([&] { AppendMany(esd, "during-", 300, 3); });
  auto c = Connect(esd);
  std::vector<uint64_t> positions;
  uint64_t caught_up_at = UINT64_MAX;
  size_t events_before_caught_up = 0;
  auto sub = c->Subscribe(SubscribeFrom::Start(), {},
                          [&](const std::vector<RecordedEvent>& batch) {
                             for (const auto& e : batch) positions.push_back(e.position);
                           },
                          [&](uint64_t p) {
                             caught_up_at = p;
                             events_before_caught_up = positions.size();
                           });
  writer.join();
  const uint64_t total = 1000 + 900;
  ASSERT_TRUE(c->RunUntil([&] { return positions.size() >= total; }, 60s)) << positions.size();
  c->RunFor(100ms);  // nothing more may come
  ASSERT_EQ(positions.size(), total);
  for (uint64_t i = 0; i < total; ++i) ASSERT_EQ(positions[i], i) << "gap or duplicate at " << i;
  ASSERT_NE(caught_up_at, UINT64_MAX) << "caught up was said";
  EXPECT_EQ(caught_up_at, events_before_caught_up) << "everything before the caught-up position came first";
  EXPECT_TRUE(sub->caught_up());

  // And it stays live: a new append arrives.
  AppendMany(esd, "after-", 1, 1);
  ASSERT_TRUE(c->RunUntil([&] { return positions.size() == total + 1; }, 30s));
  EXPECT_EQ(positions.back(), total);
}

TEST(Subscriptions, FilterByStreamPrefixAndEventTypeTogether) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "cart-", 20, 4);   // 80 events: 40 Even, 40 Odd
  AppendMany(esd, "user-", 20, 4);
  auto c = Connect(esd);
  std::vector<RecordedEvent> got;
  bool caught_up = false;
  auto sub = c->Subscribe(SubscribeFrom::Start(), {.stream_prefix = "cart-", .event_types = {"Odd"}},
                          [&](const std::vector<RecordedEvent>& b) { got.insert(got.end(), b.begin(), b.end()); },
                          [&](uint64_t) { caught_up = true; });
  ASSERT_TRUE(c->RunUntil([&] { return caught_up; }, 30s));
  ASSERT_EQ(got.size(), 40u);
  for (const auto& e : got) {
    EXPECT_EQ(e.stream.rfind("cart-", 0), 0u) << e.stream;
    EXPECT_EQ(e.type, "Odd");
  }
  for (size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1].position, got[i].position);
}

TEST(Subscriptions, OneStreamFromAVersion) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "s-", 40, 2);  // s-0 .. s-3, 20 events each
  auto c = Connect(esd);
  std::vector<RecordedEvent> got;
  bool caught_up = false;
  auto sub = c->Subscribe(SubscribeFrom::Stream("s-2", 5), {},
                          [&](const std::vector<RecordedEvent>& b) { got.insert(got.end(), b.begin(), b.end()); },
                          [&](uint64_t) { caught_up = true; });
  ASSERT_TRUE(c->RunUntil([&] { return caught_up; }, 30s));
  ASSERT_EQ(got.size(), 15u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].stream, "s-2");
    EXPECT_EQ(got[i].version, 5 + i);
  }
  auto w = Connect(esd);
  ASSERT_TRUE(w->Append("s-2", Expected::Exact(19), {NewEvent::Json("Live", "{}")}).ok());
  ASSERT_TRUE(w->Append("s-1", Expected::Any(), {NewEvent::Json("Other", "{}")}).ok());
  ASSERT_TRUE(c->RunUntil([&] { return got.size() == 16; }, 30s));
  EXPECT_EQ(got.back().type, "Live");
  c->RunFor(100ms);
  EXPECT_EQ(got.size(), 16u) << "events of other streams are not delivered";
}

TEST(Subscriptions, FromEndDeliversOnlyNewEvents) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "old-", 10, 1);
  auto c = Connect(esd);
  std::vector<RecordedEvent> got;
  bool caught_up = false;
  auto sub = c->Subscribe(SubscribeFrom::End(), {},
                          [&](const std::vector<RecordedEvent>& b) { got.insert(got.end(), b.begin(), b.end()); },
                          [&](uint64_t) { caught_up = true; });
  ASSERT_TRUE(c->RunUntil([&] { return caught_up; }, 30s));
  EXPECT_TRUE(got.empty());
  AppendMany(esd, "new-", 1, 2);
  ASSERT_TRUE(c->RunUntil([&] { return got.size() == 2; }, 30s));
  EXPECT_EQ(got[0].position, 10u);
}

TEST(Subscriptions, DroppingTheHandleStopsThePushesPromptly) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  // 40 MB of events: ten times what the flow-control window (the socket buffers) can hold,
  // so most of it can only be sent after the client has taken the first batches.
  constexpr uint64_t kEvents = 20'000;
  {
    auto w = Connect(esd);
    const std::string payload(2000, 'x');
    for (int i = 0; i < 400; ++i) {
      std::vector<NewEvent> events;
      for (int k = 0; k < 50; ++k) events.push_back(NewEvent::Json("Big", payload));
      ASSERT_TRUE(w->Append("big-" + std::to_string(i % 4), Expected::Any(), events).ok());
    }
  }
  auto c = Connect(esd);
  size_t received = 0;
  std::unique_ptr<Client::Subscription> sub;
  bool cancelled = false;
  sub = c->Subscribe(SubscribeFrom::Start(), {}, [&](const std::vector<RecordedEvent>& b) {
                       received += b.size();
                       if (sub) {  // the first batch seen after Subscribe returned: cancel
                         sub.reset();
                         cancelled = true;
                       }
                     });
  ASSERT_TRUE(c->RunUntil([&] { return cancelled; }, 30s));
  // Whatever was in flight when the cancel went out still arrives; then nothing more.
  size_t before;
  do {
    before = received;
    c->RunFor(200ms);
  } while (received != before);
  EXPECT_LT(received, kEvents) << "the cancel stopped the catch-up long before it finished";
  // The server still serves this connection and others, and holds no subscription.
  EXPECT_TRUE(c->Append("after-cancel", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  EXPECT_EQ(Connect(esd)->Status().subscriptions, 0u);
}

TEST(Subscriptions, LargeEventsArriveInMessagesTheClientAccepts) {
  // 100 events of 900 KB: in one push they would exceed a receiver's 64 MB message limit.
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  {
    auto w = Connect(esd);
    const std::string big(900'000, 'b');
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(w->Append("large", Expected::Any(), {NewEvent::Json("Big", big)}).ok());
  }
  auto c = Connect(esd);
  size_t received = 0;
  bool caught_up = false;
  auto sub = c->Subscribe(SubscribeFrom::Start(), {},
                          [&](const std::vector<RecordedEvent>& b) {
                            for (const auto& e : b) {
                              EXPECT_EQ(e.data.size(), 900'000u);
                              EXPECT_EQ(e.position, received++);
                            }
                          },
                          [&](uint64_t) { caught_up = true; });
  ASSERT_TRUE(c->RunUntil([&] { return caught_up; }, 60s));
  EXPECT_EQ(received, 100u);
  EXPECT_FALSE(sub->dropped().has_value());
}

// A caught-up subscription whose end (on_dropped) is recorded in `reason`.
struct Watched {
  std::unique_ptr<Client> client;
  std::unique_ptr<Client::Subscription> sub;
  std::string reason;
};

std::unique_ptr<Watched> WatchUntilCaughtUp(const EsdProcess& esd) {
  auto w = std::make_unique<Watched>();
  w->client = Connect(esd);
  bool caught_up = false;
  Watched* raw = w.get();
  w->sub = w->client->Subscribe(SubscribeFrom::Start(), {}, [](const std::vector<RecordedEvent>&) {},
                                [&caught_up](uint64_t) { caught_up = true; },
                                [raw](const std::string& r) { raw->reason = r; });
  EXPECT_TRUE(w->client->RunUntil([&] { return caught_up; }, 30s));
  return w;
}

TEST(Subscriptions, SubscribersAreToldWhenTheServerShutsDown) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto w = WatchUntilCaughtUp(esd);
  auto& c = w->client;
  auto& sub = w->sub;
  std::string& reason = w->reason;
  std::thread stopper([&] { EXPECT_EQ(esd.Stop(SIGTERM), 0); });
  EXPECT_TRUE(c->RunUntil([&] { return !reason.empty(); }, 30s));
  stopper.join();
  EXPECT_NE(reason.find("shutting down"), std::string::npos) << reason;
  EXPECT_EQ(sub->dropped(), reason);
}

TEST(Subscriptions, ALostConnectionEndsTheSubscriptionWithAReason) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto w = WatchUntilCaughtUp(esd);
  auto& c = w->client;
  std::string& reason = w->reason;
  esd.Kill();
  EXPECT_TRUE(c->RunUntil([&] { return !reason.empty(); }, 30s));
  EXPECT_EQ(reason.rfind("connection lost", 0), 0u) << reason;
}

TEST(Subscriptions, AStalledSubscriberDoesNotBlockAppends) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "fill-", 100, 50);  // 5,000 events, more than a flow-control window holds
  // This client subscribes and then never runs its event loop again: it takes nothing.
  auto stalled = Connect(esd);
  auto sub = stalled->Subscribe(SubscribeFrom::Start(), {}, [](const std::vector<RecordedEvent>&) {});
  // Meanwhile another client appends and reads as usual.
  auto c = Connect(esd);
  for (int i = 0; i < 200; ++i) {
    auto r = c->Append("busy", Expected::Any(), {NewEvent::Json("E", std::string(1000, 'x'))});
    ASSERT_TRUE(r.ok()) << r.reason;
  }
  EXPECT_EQ(c->GetStreamInfo("busy")->event_count, 200u);
  EXPECT_EQ(c->Status().subscriptions, 1u);
}

}  // namespace
}  // namespace esd
