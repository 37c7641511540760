// End-to-end through a real esd process and esd::client: round trips, expected versions,
// concurrent writers, and a graceful stop.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;

std::unique_ptr<Client> Connect(const EsdProcess& esd, const std::string& token = "") {
  return Client::Connect(esd.rpc_address(), token);
}

TEST(EndToEnd, AppendThenReadRoundTrip) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Connect(esd);
  auto r = c->Append("cart-1", Expected::NoStream(),
                     {NewEvent::Json("OrderCreated", R"({"customer":"c-1"})"), NewEvent::Json("ItemAdded", "{}")});
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.first_version, 0u);
  EXPECT_EQ(r.last_position, 1u);
  auto events = c->ReadStream("cart-1", 0, 100);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, "OrderCreated");
  EXPECT_EQ((*events)[0].data, R"({"customer":"c-1"})");
  EXPECT_EQ((*events)[0].content_type, "application/json");
  EXPECT_EQ((*events)[1].version, 1u);
  auto all = c->ReadAll(0, 100);
  EXPECT_EQ(all.events.size(), 2u);
  EXPECT_TRUE(all.end_of_log);
  EXPECT_EQ(all.next_position, 2u);
  auto info = c->GetStreamInfo("cart-1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->event_count, 2u);
  EXPECT_FALSE(c->GetStreamInfo("cart-2").has_value());
  EXPECT_FALSE(c->ReadStream("cart-2", 0, 10).has_value());
}

// What `top -H` and `ps -L -o tid,comm` show an operator: each thread says what it does, and
// only the event loop carries the process's own name.
TEST(EndToEnd, EveryThreadOfTheDaemonIsNamedForWhatItDoes) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  const std::multiset<std::string> names = storage::testing::ThreadNames(std::to_string(esd.pid()));
  std::string all;
  for (const auto& n : names) all += n + " ";
  EXPECT_EQ(names.count("esd"), 1u) << all;
  for (const char* expected : {"esd-writer", "esd-prealloc", "esd-index", "esd-http", "esd-ord-snap", "esd-proj-snap"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected << " in: " << all;
  }
}

TEST(EndToEnd, WrongExpectedVersionCarriesTheActualVersion) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Connect(esd);
  ASSERT_TRUE(c->Append("s", Expected::Any(), {NewEvent::Json("A", "{}"), NewEvent::Json("B", "{}")}).ok());
  auto r = c->Append("s", Expected::Exact(0), {NewEvent::Json("C", "{}")});
  ASSERT_EQ(r.outcome, client::AppendResult::Outcome::kWrongExpectedVersion);
  EXPECT_EQ(r.actual_version, 1u);
  auto none = c->Append("t", Expected::StreamExists(), {NewEvent::Json("C", "{}")});
  ASSERT_EQ(none.outcome, client::AppendResult::Outcome::kWrongExpectedVersion);
  EXPECT_FALSE(none.actual_version.has_value());
}

TEST(EndToEnd, UnixSocketListener) {
  storage::testing::TempDir dir;
  const std::string socket = "unix:" + (dir.path() / "esd.sock").string();
  EsdProcess esd(dir.path() / "data", {"--listen", socket});
  EXPECT_EQ(esd.rpc_address(), socket);
  auto c = Client::Connect(socket);
  ASSERT_TRUE(c->Append("u", Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());
  EXPECT_EQ(c->ReadStream("u", 0, 10)->size(), 1u);
  c.reset();
  EXPECT_EQ(esd.Stop(SIGTERM), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "esd.sock")) << "the socket file goes with the daemon";
}

TEST(EndToEnd, SigtermUnderLoadAnswersOrRefusesEveryAppendAndLosesNone) {
  storage::testing::TempDir dir;
  std::mutex mu;
  std::vector<std::pair<std::string, uint64_t>> acked;  // stream, first version
  std::atomic<int> acks{0};
  {
    EsdProcess esd(dir.path() / "data");
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        auto c = Connect(esd);
        const std::string stream = "term-" + std::to_string(t);
        bool refused = false;
        try {
          while (true) {
            auto r = c->Append(stream, Expected::Any(), {NewEvent::Json("E", "{}")});
            if (r.ok()) {
              EXPECT_FALSE(refused) << "nothing is acknowledged after the daemon started refusing";
              std::lock_guard lock(mu);
              acked.emplace_back(stream, r.first_version);
              ++acks;
            } else {
              EXPECT_EQ(r.reject_code, "unavailable") << r.reason;
              EXPECT_NE(r.reason.find("shutting down"), std::string::npos) << r.reason;
              refused = true;
            }
          }
        } catch (const client::Error&) {
          // the daemon closed the connection: the end of the run for this writer
        }
      });
    }
    while (acks.load() < 200) std::this_thread::yield();
    EXPECT_EQ(esd.Stop(SIGTERM), 0) << esd.Output();
    for (auto& w : writers) w.join();
  }
  EsdProcess again(dir.path() / "data");
  auto c = Connect(again);
  for (const auto& [stream, version] : acked) {
    auto events = c->ReadStream(stream, version, 1);
    ASSERT_TRUE(events.has_value() && events->size() == 1) << stream << "@" << version;
  }
}

TEST(EndToEnd, ReadyLineReportsTheStore) {
  storage::testing::TempDir dir;
  {
    EsdProcess esd(dir.path() / "data");
    ASSERT_TRUE(Connect(esd)->Append("r", Expected::Any(), {NewEvent::Json("E", "{}"), NewEvent::Json("E", "{}")}).ok());
  }
  EsdProcess esd(dir.path() / "data");
  const std::string out = esd.Output();
  EXPECT_NE(out.find("events=2 "), std::string::npos) << out;
  EXPECT_NE(out.find("fsync=always"), std::string::npos) << out;
  // bytes= is the log written (a segment header and two small batches), allocated= the disk
  // blocks of the segment: a 4 MiB segment is smaller than the zeros kept ahead of the
  // writer, so all of it.
  auto field = [&](const std::string& name) -> uint64_t {
    const size_t at = out.find(" " + name + "=");
    return at == std::string::npos ? 0 : std::stoull(out.substr(at + name.size() + 2));
  };
  EXPECT_GT(field("bytes"), 64u) << out;
  EXPECT_LT(field("bytes"), 4096u) << out;
  EXPECT_GE(field("allocated"), 4194304u) << "the 4 MiB segment, zero-filled: " << out;
  EXPECT_LT(field("allocated"), 2 * 4194304u) << "no spare before the segment is half full: " << out;
}

TEST(EndToEnd, SigtermExitsZeroAndKeepsEveryAcknowledgedAppend) {
  storage::testing::TempDir dir;
  uint64_t acknowledged = 0;
  {
    EsdProcess esd(dir.path() / "data");
    auto c = Connect(esd);
    for (int i = 0; i < 50; ++i) {
      auto r = c->Append("stop-" + std::to_string(i % 3), Expected::Any(), {NewEvent::Json("E", "{}")});
      ASSERT_TRUE(r.ok());
      ++acknowledged;
    }
    EXPECT_EQ(esd.Stop(SIGTERM), 0) << esd.Output();
  }
  EsdProcess again(dir.path() / "data");
  auto c = Connect(again);
  EXPECT_EQ(c->ReadAll(0, 1000).events.size(), acknowledged);
}

}  // namespace
}  // namespace esd
