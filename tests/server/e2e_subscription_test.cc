// Catch-up subscriptions end to end: from 0 while writers run (no gap, no duplicate at the
// switch to live), filters, cancellation, and a stalled subscriber that must not hold up
// appends.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "client/client.h"
#include "protocol/esd.capnp.h"
#include "server/esd_process.h"
#include "storage/format.h"
#include "storage/store.h"
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
  // A barrier: one more event after all of them. Whatever came twice would arrive before it.
  AppendMany(esd, "sentinel-", 1, 1);
  ASSERT_TRUE(c->RunUntil([&] { return positions.size() >= total + 1 && positions.back() == total; }, 60s))
      << positions.size();
  ASSERT_EQ(positions.size(), total + 1);
  for (uint64_t i = 0; i <= total; ++i) ASSERT_EQ(positions[i], i) << "gap or duplicate at " << i;
  ASSERT_NE(caught_up_at, UINT64_MAX) << "caught up was said";
  EXPECT_EQ(caught_up_at, events_before_caught_up) << "everything before the caught-up position came first";
  EXPECT_TRUE(sub->caught_up());

  // And it stays live: a new append arrives.
  AppendMany(esd, "after-", 1, 1);
  ASSERT_TRUE(c->RunUntil([&] { return positions.size() == total + 2; }, 30s));
  EXPECT_EQ(positions.back(), total + 1);
}

// Removed events (here: expired at once by max age) are passed over, not served, and a
// catch-up that ends in them still reaches the end of the log and says so.
TEST(Subscriptions, CatchUpPassesRemovedEventsAtTheEndOfTheLogAndSaysCaughtUp) {
  storage::testing::TempDir dir;
  uint64_t end = 0;
  {
    auto store = storage::Store::Open(dir.path() / "data", storage::testing::SmallOptions());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->AppendSync("kept", storage::ExpectedVersion::Any(),
                                     storage::testing::MakeEvents("kept", 0, 2)).ok());
    storage::StreamMetadata m;
    m.max_age_micros = 1;
    ASSERT_TRUE((*store)->SetStreamMetadataSync("ticker", storage::ExpectedVersion::Any(), m).ok());
    for (uint64_t v = 0; v < 5; ++v) {
      ASSERT_TRUE((*store)->AppendSync("ticker", storage::ExpectedVersion::Any(),
                                       storage::testing::MakeEvents("ticker", v, 1)).ok());
    }
    end = (*store)->DurablePosition().value;
  }
  EsdProcess esd(dir.path() / "data");
  auto c = Connect(esd);
  std::vector<RecordedEvent> got;
  std::optional<uint64_t> caught_up;
  auto sub = c->Subscribe(SubscribeFrom::Start(), {},
                          [&](const std::vector<RecordedEvent>& b) { got.insert(got.end(), b.begin(), b.end()); },
                          [&](uint64_t p) { caught_up = p; });
  ASSERT_TRUE(c->RunUntil([&] { return caught_up.has_value(); }, 30s)) << "a scan of removed events never ended";
  EXPECT_EQ(*caught_up, end);
  ASSERT_EQ(got.size(), 3u);  // kept 0, kept 1, and the metadata event of "ticker"
  EXPECT_EQ(got[0].stream, "kept");
  EXPECT_EQ(got[1].stream, "kept");
  EXPECT_EQ(got[2].stream, "$$ticker");

  auto page = c->ReadAll(0, 100);
  EXPECT_EQ(page.events.size(), 3u);
  EXPECT_EQ(page.next_position, end) << "the next page starts past the removed events";
  EXPECT_TRUE(page.end_of_log);
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
  // A barrier: a later event of s-2. The event of s-1 came before it in the log, so had it
  // been delivered, it would have arrived first.
  ASSERT_TRUE(w->Append("s-2", Expected::Exact(20), {NewEvent::Json("Sentinel", "{}")}).ok());
  ASSERT_TRUE(c->RunUntil([&] { return !got.empty() && got.back().type == "Sentinel"; }, 30s));
  ASSERT_EQ(got.size(), 17u) << "events of other streams are not delivered";
  EXPECT_EQ(got[15].type, "Live");
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

// Bytes this process has read from files and sockets so far (/proc/self/io, rchar).
uint64_t BytesReadByThisProcess() {
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return 0;
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
  const uint64_t read_before = BytesReadByThisProcess();
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
  // A barrier: a call on the same connection. The daemon read the cancel before it, and
  // what it pushed before reading the cancel comes before its answer.
  EXPECT_TRUE(c->Append("after-cancel", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  EXPECT_EQ(c->Status().subscriptions, 0u) << "the daemon holds no subscription";
  // Batches that arrive after the cancel are dropped unseen by the client, so what the
  // daemon sent is measured on the socket: far less than the 40 MB of the whole catch-up.
  const uint64_t read = BytesReadByThisProcess() - read_before;
  EXPECT_LT(read, uint64_t{20} << 20) << "the cancel stopped the catch-up of " << kEvents << " events long before it finished";
  // Nothing more arrives after that (a second barrier: another round trip).
  EXPECT_TRUE(c->GetStreamInfo("after-cancel").has_value());
  EXPECT_LT(BytesReadByThisProcess() - read_before, read + 4096) << "only the answer to that call arrived";
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

// ---- What is counted as a subscription, through the wire API ----

// A Subscriber that records what the daemon tells it; `fail_events` makes each push throw,
// as a consumer whose handler fails.
class RecordingSubscriber final : public rpc::Subscriber::Server {
 public:
  struct Seen {
    size_t events = 0;
    std::optional<std::string> dropped;
    kj::PromiseFulfillerPair<void> dropped_said = kj::newPromiseAndFulfiller<void>();
  };
  RecordingSubscriber(Seen& seen, bool fail_events) : seen_(seen), fail_events_(fail_events) {}
  kj::Promise<void> events(EventsContext context) override {
    KJ_REQUIRE(!fail_events_, "the consumer's handler failed");
    seen_.events += context.getParams().getEvents().size();
    return kj::READY_NOW;
  }
  kj::Promise<void> caughtUp(CaughtUpContext) override { return kj::READY_NOW; }
  kj::Promise<void> dropped(DroppedContext context) override {
    seen_.dropped = context.getParams().getReason().cStr();
    seen_.dropped_said.fulfiller->fulfill();
    return kj::READY_NOW;
  }

 private:
  Seen& seen_;
  const bool fail_events_;
};

// A logged-in wire connection (no esd::client, which shares its thread's event loop).
struct WireSession {
  explicit WireSession(const EsdProcess& esd)
      : io(kj::setupAsyncIo()),
        stream(io.provider->getNetwork().parseAddress(esd.rpc_address()).wait(io.waitScope)->connect().wait(io.waitScope)),
        rpc(*stream),
        session(rpc.bootstrap().castAs<rpc::Bootstrap>().loginRequest().send().getSession()),
        store(session.eventStoreRequest().send().getStore()),
        admin(session.adminRequest().send().getAdmin()) {}
  uint32_t Subscriptions() { return admin.statusRequest().send().wait(io.waitScope).getStatus().getSubscriptions(); }
  rpc::Subscription::Client Subscribe(RecordingSubscriber::Seen& seen, bool fail_events) {
    auto request = store.subscribeRequest();
    request.getFrom().setStart();
    request.setSubscriber(kj::heap<RecordingSubscriber>(seen, fail_events));
    return request.send().wait(io.waitScope).getSubscription();
  }
  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient rpc;
  rpc::Session::Client session;
  rpc::EventStore::Client store;
  rpc::Admin::Client admin;
};

// One event as either form of a push carries it, to compare them.
struct PushedEvent {
  uint64_t position, version, timestamp;
  std::string stream, id, type, content_type, metadata, data;
  bool operator==(const PushedEvent&) const = default;
};

// Takes pushes in either form until caught up; records are decoded with the store's own
// record parser (protocol/esd.capnp documents them as the log's records).
class ComparingSubscriber final : public rpc::Subscriber::Server {
 public:
  struct Seen {
    std::vector<PushedEvent> events;
    size_t pushes_with_records = 0, pushes_with_list = 0;
    size_t largest_records = 0;  // bytes of the largest push of records
    std::optional<uint64_t> caught_up;
  };
  explicit ComparingSubscriber(Seen& seen) : seen_(seen) {}
  kj::Promise<void> events(EventsContext context) override {
    auto params = context.getParams();
    if (params.hasRecords()) {
      ++seen_.pushes_with_records;
      EXPECT_EQ(params.getEvents().size(), 0u);
      auto bytes = params.getRecords();
      seen_.largest_records = std::max(seen_.largest_records, bytes.size());
      std::span<const uint8_t> left(bytes.begin(), bytes.size());
      while (!left.empty()) {
        storage::format::EventView e;
        uint32_t size = 0;
        KJ_REQUIRE(storage::format::ParseEvent(left, &e, &size), "a record that does not parse");
        seen_.events.push_back({e.position.value, e.version.value, e.timestamp, std::string(e.stream),
                                std::string(reinterpret_cast<const char*>(e.id.bytes.data()), 16), std::string(e.type),
                                std::string(e.content_type), std::string(e.metadata), std::string(e.data)});
        left = left.subspan(size);
      }
    } else {
      ++seen_.pushes_with_list;
      for (auto e : params.getEvents()) {
        auto id = e.getId();
        seen_.events.push_back({e.getPosition(), e.getVersion(), e.getTimestampMicros(), e.getStream().cStr(),
                                std::string(reinterpret_cast<const char*>(id.begin()), id.size()), e.getType().cStr(),
                                e.getContentType().cStr(),
                                std::string(reinterpret_cast<const char*>(e.getMetadata().begin()), e.getMetadata().size()),
                                std::string(reinterpret_cast<const char*>(e.getData().begin()), e.getData().size())});
      }
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> caughtUp(CaughtUpContext context) override {
    seen_.caught_up = context.getParams().getPosition();
    return kj::READY_NOW;
  }
  kj::Promise<void> dropped(DroppedContext) override { return kj::READY_NOW; }

 private:
  Seen& seen_;
};

// Subscribes to $all from the start twice, filtered by `prefix`, one taking records and one
// the list, and waits until both are caught up (at the durable position).
void SubscribeBothWays(EsdProcess& esd, const std::string& prefix, ComparingSubscriber::Seen& as_records,
                       ComparingSubscriber::Seen& as_list) {
  const uint64_t durable = Connect(esd)->Status().durable_position;
  WireSession wire(esd);  // its own event loop, gone when this returns
  std::vector<rpc::Subscription::Client> subscriptions;
  for (auto* seen : {&as_records, &as_list}) {
    auto request = wire.store.subscribeRequest();
    request.getFrom().setStart();
    request.getFilter().setStreamPrefix(prefix);
    request.setRecords(seen == &as_records);
    request.setSubscriber(kj::heap<ComparingSubscriber>(*seen));
    subscriptions.push_back(request.send().wait(wire.io.waitScope).getSubscription());
  }
  auto deadline = wire.io.provider->getTimer().afterDelay(60 * kj::SECONDS);
  while (!(as_records.caught_up && as_list.caught_up)) {
    auto turn = wire.io.provider->getTimer().afterDelay(10 * kj::MILLISECONDS);
    turn.wait(wire.io.waitScope);
    ASSERT_FALSE(deadline.poll(wire.io.waitScope)) << "not caught up within 60 s";
  }
  EXPECT_EQ(*as_records.caught_up, durable);
  EXPECT_EQ(*as_list.caught_up, durable);
}

TEST(Subscriptions, ASubscriberThatAsksForRecordsGetsTheSameEventsAsOneThatTakesTheList) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  {
    // More than one push's worth (2,048 events), with every field set and of varied sizes.
    auto c = Connect(esd);
    for (int i = 0; i < 80; ++i) {
      std::vector<NewEvent> events;
      for (int k = 0; k < 1 + i % 90; ++k) {
        NewEvent e = NewEvent::Json(k % 2 ? "Odd" : "EvenLonger", "{\"k\":" + std::to_string(k) + "}");
        e.metadata = std::string(static_cast<size_t>(k % 7), 'm');
        events.push_back(e);
      }
      auto r = c->Append("records-" + std::string(static_cast<size_t>(1 + i % 5), 's'), Expected::Any(), events);
      ASSERT_TRUE(r.ok()) << r.reason;
    }
  }
  const uint64_t total = Connect(esd)->Status().durable_position;
  ASSERT_GT(total, 2048u);
  ComparingSubscriber::Seen as_records, as_list;
  SubscribeBothWays(esd, "", as_records, as_list);
  ASSERT_EQ(as_records.events.size(), total);
  EXPECT_TRUE(as_records.events == as_list.events);
  for (uint64_t p = 0; p < total; ++p) ASSERT_EQ(as_records.events[p].position, p);
  EXPECT_GT(as_records.pushes_with_records, 1u);
  EXPECT_EQ(as_records.pushes_with_list, 0u);
  EXPECT_EQ(as_list.pushes_with_records, 0u);

  // esd::client asks for records and decodes them itself: the same events again.
  auto c = Connect(esd);
  std::vector<PushedEvent> from_client;
  auto sub = c->Subscribe(SubscribeFrom::Start(), {}, [&](const std::vector<RecordedEvent>& events) {
    for (const auto& e : events) {
      from_client.push_back({e.position, e.version, e.timestamp_micros, e.stream,
                             std::string(reinterpret_cast<const char*>(e.id.data()), e.id.size()), e.type, e.content_type,
                             e.metadata, e.data});
    }
  });
  ASSERT_TRUE(c->RunUntil([&] { return from_client.size() >= total; }, 60s));
  EXPECT_TRUE(from_client == as_list.events);
}

// Records catch up whole batches at a time (Store::ReadAllRecords); a stream prefix and
// removed events in the middle of batches change nothing of what arrives.
TEST(Subscriptions, RecordsWithAStreamPrefixAndRemovedEventsAreTheEventsTheListHas) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  {
  auto c = Connect(esd);  // gone before the subscriptions' own event loop
  for (int i = 0; i < 240; ++i) {  // ~4,900 events: more than a push's 2,048, also filtered
    std::vector<NewEvent> events;
    for (int k = 0; k < 1 + i % 40; ++k) events.push_back(NewEvent::Json("E", "{\"k\":" + std::to_string(k) + "}"));
    const std::string stream = (i % 3 == 0 ? "other-" : "kept-") + std::to_string(i % 7);
    auto r = c->Append(stream, Expected::Any(), events);
    ASSERT_TRUE(r.ok()) << r.reason;
  }
  // Versions below 5 of kept-1 and kept-2 are removed: the first batches of each, partly.
  ASSERT_TRUE(c->TruncateStream("kept-1", 5).ok());
  ASSERT_TRUE(c->TruncateStream("kept-2", 5).ok());
  }

  for (const std::string prefix : {"kept-", ""}) {
    ComparingSubscriber::Seen as_records, as_list;
    SubscribeBothWays(esd, prefix, as_records, as_list);
    ASSERT_GT(as_list.events.size(), 1000u);
    EXPECT_TRUE(as_records.events == as_list.events) << "prefix '" << prefix << "'";
    std::map<std::string, uint64_t> next_version;
    for (const auto& e : as_records.events) {
      EXPECT_TRUE(e.stream.starts_with(prefix)) << e.stream;
      if (e.stream == "kept-1" || e.stream == "kept-2") {
        const uint64_t expected = next_version.count(e.stream) ? next_version[e.stream] : 5;
        EXPECT_EQ(e.version, expected) << e.stream << " from version 5 on, each once";
        next_version[e.stream] = e.version + 1;
      }
    }
    EXPECT_EQ(next_version.size(), 2u);
    EXPECT_GT(as_records.pushes_with_records, 1u);
  }
}

// A push of records stays within 1 MiB (and one event) when single appends are larger.
TEST(Subscriptions, RecordsOfAppendsLargerThanAPushArriveSplitAcrossPushes) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  {
    auto c = Connect(esd);
    for (int i = 0; i < 4; ++i) {
      std::vector<NewEvent> events;  // ~3 MB, one batch
      for (int k = 0; k < 10; ++k) events.push_back(NewEvent::Json("Big", std::string(300'000, 'b')));
      auto r = c->Append("big", Expected::Any(), events);
      ASSERT_TRUE(r.ok()) << r.reason;
    }
    for (int i = 0; i < 2100; ++i) ASSERT_TRUE(c->Append("small", Expected::Any(), {NewEvent::Json("S", "{}")}).ok());
  }
  ComparingSubscriber::Seen as_records, as_list;
  SubscribeBothWays(esd, "", as_records, as_list);
  ASSERT_EQ(as_records.events.size(), 40u + 2100u);
  EXPECT_TRUE(as_records.events == as_list.events);
  EXPECT_GE(as_records.pushes_with_records, 12u) << "each 3 MB append takes three pushes or more";
  EXPECT_LE(as_records.largest_records, (1u << 20) + 300'000u + 1024u);
}

// readAll's `records` are the same records (protocol/esd.capnp); here beside the pushes'.
TEST(Subscriptions, AReadAllAnswerAsRecordsHoldsTheSameEventsAsOneAsAList) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "read-all-", 40, 30);
  WireSession wire(esd);
  auto page = [&](bool records, uint64_t from, uint32_t count) {
    auto request = wire.store.readAllRequest();
    request.setFromPosition(from);
    request.setCount(count);
    request.setRecords(records);
    return request.send().wait(wire.io.waitScope);
  };
  uint64_t from = 0;
  size_t pages = 0;
  while (true) {
    auto as_records = page(true, from, 500);
    auto as_list = page(false, from, 500);
    EXPECT_EQ(as_records.getEvents().size(), 0u);
    EXPECT_FALSE(as_list.hasRecords());
    EXPECT_EQ(as_records.getNextPosition(), as_list.getNextPosition());
    EXPECT_EQ(as_records.getEndOfLog(), as_list.getEndOfLog());
    auto records = as_records.getRecords();
    std::span<const uint8_t> left(records.begin(), records.size());
    for (auto e : as_list.getEvents()) {
      storage::format::EventView r;
      uint32_t size = 0;
      ASSERT_TRUE(storage::format::ParseEvent(left, &r, &size));
      EXPECT_EQ(r.position.value, e.getPosition());
      EXPECT_EQ(r.version.value, e.getVersion());
      EXPECT_EQ(r.stream, std::string_view(e.getStream().cStr()));
      EXPECT_EQ(r.type, std::string_view(e.getType().cStr()));
      EXPECT_EQ(r.data, std::string_view(reinterpret_cast<const char*>(e.getData().begin()), e.getData().size()));
      left = left.subspan(size);
    }
    EXPECT_TRUE(left.empty()) << "as many records as events";
    ++pages;
    if (as_list.getEndOfLog() || pages > 100) break;
    from = as_list.getNextPosition();
  }
  EXPECT_EQ(pages, 3u) << "pages of 500 at 0, 500 and 1,000 of 1,200 events";
  EXPECT_EQ(from, 1000u);
}

TEST(SubscriptionCount, ACancelledSubscriptionIsNoLongerCountedWhileItsHandleIsHeld) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  WireSession wire(esd);
  RecordingSubscriber::Seen seen;
  auto subscription = wire.Subscribe(seen, false);
  EXPECT_EQ(wire.Subscriptions(), 1u);
  subscription.cancelRequest().send().wait(wire.io.waitScope);
  EXPECT_EQ(wire.Subscriptions(), 0u) << "cancelled, though the client still holds the capability";
  auto again = wire.store.streamInfoRequest();
  again.setStream("x");
  again.send().wait(wire.io.waitScope);  // the connection goes on
}

TEST(SubscriptionCount, ASubscriberThatFailsAPushEndsItsSubscriptionWhichIsNoLongerCounted) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "fail-", 10, 2);
  WireSession wire(esd);
  RecordingSubscriber::Seen seen;
  auto subscription = wire.Subscribe(seen, true);
  // Its first push fails in the subscriber (capnp then lets no further call reach it, so
  // the daemon cannot say `dropped`): the daemon ends the subscription and says so in its
  // log. The client's loop runs meanwhile, to answer the daemon's calls.
  auto logged = kj::newPromiseAndCrossThreadFulfiller<bool>();
  std::thread reader([&] {
    logged.fulfiller->fulfill(esd.WaitForOutput("a subscriber failed to take a push, so its subscription ended"));
  });
  const bool said = logged.promise.wait(wire.io.waitScope);
  reader.join();
  ASSERT_TRUE(said) << esd.Output();
  EXPECT_NE(esd.Output().find("the consumer's handler failed"), std::string::npos) << esd.Output();
  EXPECT_EQ(wire.Subscriptions(), 0u);
  EXPECT_NE(testing::HttpGet(esd.http_address(), "/metrics").find("esd_subscribers_failed_total 1\n"), std::string::npos);
}

TEST(SubscriptionCount, AClientWhoseCallbackThrowsIsToldWhyAndTheDaemonStopsCountingIt) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  AppendMany(esd, "throw-", 10, 2);
  auto c = Connect(esd);
  std::string reason;
  auto sub = c->Subscribe(
      SubscribeFrom::Start(), {}, [](const std::vector<RecordedEvent>&) { throw std::runtime_error("disk of the consumer full"); },
      {}, [&](const std::string& r) { reason = r; });
  ASSERT_TRUE(c->RunUntil([&] { return !reason.empty(); }, 30s));
  EXPECT_NE(reason.find("disk of the consumer full"), std::string::npos) << reason;
  EXPECT_EQ(sub->dropped(), reason);
  // The client's loop runs while the daemon's log is read, to answer the daemon's calls.
  auto logged = std::async(std::launch::async, [&] { return esd.WaitForOutput("a subscriber failed to take a push"); });
  c->RunUntil([&] { return logged.wait_for(0s) == std::future_status::ready; }, 60s);
  ASSERT_TRUE(logged.get()) << esd.Output();
  EXPECT_EQ(c->Status().subscriptions, 0u);
}

}  // namespace
}  // namespace esd
