// Stream lifecycle and scavenge over RPC, end to end: a real esd, the C++ client.
// (The storage rules themselves are tested in tests/storage; what matters here is that each
// outcome reaches a client typed, that roles hold, and that /metrics and the log say it.)
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::Expected;
using client::LifecycleResult;
using client::NewEvent;
using testing::EsdProcess;
using testing::MetricSample;
using Outcome = LifecycleResult::Outcome;

void AppendN(Client& c, const std::string& stream, int n) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(c.Append(stream, Expected::Any(), {NewEvent::Json("E", "{\"i\":" + std::to_string(i) + "}")}).ok());
  }
}

std::vector<uint64_t> Versions(Client& c, const std::string& stream, bool backward = false) {
  std::vector<uint64_t> out;
  auto events = c.ReadStream(stream, backward ? UINT64_MAX : 0, 100, backward);
  if (events) {
    for (const auto& e : *events) out.push_back(e.version);
  }
  return out;
}

TEST(Lifecycle, ASoftDeletedStreamReadsAsNotFoundAndAnAppendRecreatesItWithVersionsGoingOn) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "cart-1", 3);
  AppendN(*c, "cart-2", 1);

  const LifecycleResult r = c->DeleteStream("cart-1");
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.position, 4u) << "the delete is the next event of $all";
  client::StreamPageEnd end;
  EXPECT_EQ(c->ReadStream("cart-1", 0, 100, false, &end), std::nullopt);
  EXPECT_FALSE(end.stream_deleted) << "soft: not found, not a tombstone";
  const auto info = c->GetStreamInfo("cart-1");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->last_version, 2u);
  EXPECT_EQ(info->first_kept, 3u);
  EXPECT_FALSE(info->hard_deleted);
  EXPECT_TRUE(info->has_metadata);

  // $all holds no removed event, and shows the delete itself.
  const auto all = c->ReadAll(0, 100);
  std::vector<std::string> seen;
  for (const auto& e : all.events) seen.push_back(e.stream + "@" + std::to_string(e.version) + " " + e.type);
  EXPECT_EQ(seen, (std::vector<std::string>{"cart-2@0 E", "$$cart-1@0 $streamDeleted"}));

  const auto recreated = c->Append("cart-1", Expected::NoStream(), {NewEvent::Json("E", "{}")});
  ASSERT_TRUE(recreated.ok()) << recreated.reason;
  EXPECT_EQ(recreated.first_version, 3u);
  EXPECT_EQ(Versions(*c, "cart-1"), std::vector<uint64_t>{3});
}

TEST(Lifecycle, AHardDeletedStreamAnswersStreamDeletedToAppendsReadsAndEveryChange) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "gone", 2);
  ASSERT_TRUE(c->DeleteStream("gone", Expected::Exact(1), /*hard=*/true).ok());

  EXPECT_EQ(c->Append("gone", Expected::Any(), {NewEvent::Json("E", "{}")}).outcome,
            client::AppendResult::Outcome::kStreamDeleted);
  client::StreamPageEnd end;
  EXPECT_EQ(c->ReadStream("gone", 0, 10, false, &end), std::nullopt);
  EXPECT_TRUE(end.stream_deleted);
  EXPECT_EQ(c->ReadStream("gone", UINT64_MAX, 10, true, &end), std::nullopt);
  EXPECT_TRUE(end.stream_deleted) << "backwards too";
  EXPECT_EQ(c->DeleteStream("gone", Expected::Any(), true).outcome, Outcome::kStreamDeleted) << "a second delete";
  EXPECT_EQ(c->DeleteStream("gone").outcome, Outcome::kStreamDeleted);
  EXPECT_EQ(c->TruncateStream("gone", 1).outcome, Outcome::kStreamDeleted);
  client::StreamMetadata m;
  m.max_count = 5;
  EXPECT_EQ(c->SetStreamMetadata("gone", m).outcome, Outcome::kStreamDeleted);
  EXPECT_TRUE(c->GetStreamInfo("gone")->hard_deleted);
  EXPECT_TRUE(c->GetStreamMetadata("gone").metadata.hard_deleted);
}

TEST(Lifecycle, RefusedChangesAreTypedAndChangeNothing) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "s", 3);

  EXPECT_EQ(c->DeleteStream("unknown").outcome, Outcome::kNotFound);
  EXPECT_EQ(c->TruncateStream("unknown", 0).outcome, Outcome::kNotFound);
  const LifecycleResult wrong = c->DeleteStream("s", Expected::Exact(0));
  EXPECT_EQ(wrong.outcome, Outcome::kWrongExpectedVersion);
  EXPECT_EQ(wrong.actual_version, 2u);
  const LifecycleResult past = c->TruncateStream("s", 5);
  EXPECT_EQ(past.outcome, Outcome::kRejected);
  EXPECT_EQ(past.reject_code, "invalid-argument") << past.reason;
  const LifecycleResult reserved = c->DeleteStream("$s");
  EXPECT_EQ(reserved.outcome, Outcome::kRejected);
  EXPECT_EQ(reserved.reject_code, "invalid-argument") << reserved.reason;
  client::StreamMetadata zero;
  zero.max_count = 0;
  const LifecycleResult zero_count = c->SetStreamMetadata("s", zero);
  EXPECT_EQ(zero_count.outcome, Outcome::kRejected);
  EXPECT_EQ(zero_count.reject_code, "invalid-argument") << zero_count.reason;

  EXPECT_EQ(Versions(*c, "s"), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_FALSE(c->GetStreamInfo("s")->has_metadata);
  EXPECT_EQ(c->ReadAll(0, 100).events.size(), 3u) << "nothing was written";
}

TEST(Lifecycle, TruncateRemovesTheVersionsBelowInBothDirectionsAndUpToTheEnd) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "t", 5);
  ASSERT_TRUE(c->TruncateStream("t", 3).ok());
  EXPECT_EQ(Versions(*c, "t"), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(Versions(*c, "t", /*backward=*/true), (std::vector<uint64_t>{4, 3}));
  EXPECT_EQ(c->GetStreamInfo("t")->first_kept, 3u);
  EXPECT_EQ(c->GetStreamMetadata("t").metadata.truncate_before, 3u);

  ASSERT_TRUE(c->TruncateStream("t", 5).ok()) << "last version + 1: everything";
  EXPECT_EQ(c->ReadStream("t", 0, 10), std::nullopt);
  ASSERT_TRUE(c->Append("t", Expected::Exact(4), {NewEvent::Json("E", "{}")}).ok()) << "versions go on";
  EXPECT_EQ(Versions(*c, "t"), std::vector<uint64_t>{5});
}

TEST(Lifecycle, MetadataRoundTripsWithItsOwnExpectedVersion) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "m", 1);
  const auto none = c->GetStreamMetadata("m");
  ASSERT_TRUE(none.ok);
  EXPECT_EQ(none.metadata_version, std::nullopt);
  EXPECT_EQ(none.metadata.max_count, std::nullopt);

  client::StreamMetadata m;
  m.max_age_micros = 3'600'000'000;
  m.max_count = 10;
  m.custom = "{\"owner\":\"team-a\"}";
  const LifecycleResult set = c->SetStreamMetadata("m", m, Expected::NoStream());
  ASSERT_TRUE(set.ok()) << set.reason;
  EXPECT_EQ(set.metadata_version, 0u);
  const auto got = c->GetStreamMetadata("m");
  EXPECT_EQ(got.metadata_version, 0u);
  EXPECT_EQ(got.metadata.max_age_micros, 3'600'000'000u);
  EXPECT_EQ(got.metadata.max_count, 10u);
  EXPECT_EQ(got.metadata.custom, "{\"owner\":\"team-a\"}");

  m.max_count = 1;
  const LifecycleResult stale = c->SetStreamMetadata("m", m, Expected::NoStream());
  EXPECT_EQ(stale.outcome, Outcome::kWrongExpectedVersion);
  EXPECT_EQ(stale.actual_version, 0u);
  EXPECT_EQ(c->GetStreamMetadata("m").metadata.max_count, 10u) << "unchanged";
  EXPECT_TRUE(c->SetStreamMetadata("m", m, Expected::Exact(0)).ok());
  EXPECT_EQ(c->GetStreamMetadata("m").metadata_version, 1u);
}

TEST(Lifecycle, MaxCountShowsInReadsAtOnce) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "capped", 5);
  client::StreamMetadata m;
  m.max_count = 2;
  ASSERT_TRUE(c->SetStreamMetadata("capped", m).ok());
  EXPECT_EQ(Versions(*c, "capped"), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(Versions(*c, "capped", true), (std::vector<uint64_t>{4, 3}));
  AppendN(*c, "capped", 1);
  EXPECT_EQ(Versions(*c, "capped"), (std::vector<uint64_t>{4, 5}));
}

TEST(Lifecycle, SubscribersSeeTheDeleteAndAStreamSubscriptionEndsAtAHardDelete) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "watched", 2);
  std::vector<std::string> all;
  bool all_caught_up = false;
  auto sub_all = c->Subscribe(
      client::SubscribeFrom::Start(), {},
      [&](const std::vector<client::RecordedEvent>& events) {
        for (const auto& e : events) all.push_back(e.stream + " " + e.type);
      },
      [&](uint64_t) { all_caught_up = true; });
  std::vector<uint64_t> versions;
  std::optional<std::string> dropped;
  bool stream_caught_up = false;
  auto sub_stream = c->Subscribe(
      client::SubscribeFrom::Stream("watched", 0), {},
      [&](const std::vector<client::RecordedEvent>& events) {
        for (const auto& e : events) versions.push_back(e.version);
      },
      [&](uint64_t) { stream_caught_up = true; }, [&](const std::string& reason) { dropped = reason; });
  ASSERT_TRUE(c->RunUntil([&] { return all_caught_up && stream_caught_up; }, std::chrono::seconds(30)));

  ASSERT_TRUE(c->DeleteStream("watched", Expected::Any(), /*hard=*/true).ok());
  ASSERT_TRUE(c->RunUntil([&] { return all.size() == 3 && dropped.has_value(); }, std::chrono::seconds(30)))
      << all.size();
  EXPECT_EQ(all, (std::vector<std::string>{"watched E", "watched E", "$$watched $streamDeleted"}));
  EXPECT_EQ(versions, (std::vector<uint64_t>{0, 1}));
  EXPECT_NE(dropped->find("hard-deleted"), std::string::npos) << *dropped;
}

std::filesystem::path WriteAuthFile(const std::filesystem::path& dir) {
  const auto path = dir / "tokens";
  std::ofstream(path) << "r-token reader\nw-token writer\na-token admin\n";
  return path;
}

TEST(Lifecycle, AReaderMayNotChangeAStreamAndOnlyTheAdminScavenges) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--auth", WriteAuthFile(dir.path()).string()});
  auto writer = Client::Connect(esd.rpc_address(), "w-token");
  AppendN(*writer, "s", 2);

  auto reader = Client::Connect(esd.rpc_address(), "r-token");
  client::StreamMetadata m;
  m.max_count = 1;
  for (const LifecycleResult& r : {reader->DeleteStream("s"), reader->DeleteStream("s", Expected::Any(), true),
                                   reader->TruncateStream("s", 1), reader->SetStreamMetadata("s", m)}) {
    EXPECT_EQ(r.outcome, Outcome::kRejected);
    EXPECT_EQ(r.reject_code, "permission-denied");
    EXPECT_NE(r.reason.find("role reader may not"), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find("needs writer or admin"), std::string::npos) << r.reason;
  }
  EXPECT_TRUE(reader->GetStreamMetadata("s").ok) << "reading the metadata is a read";
  EXPECT_EQ(Versions(*reader, "s"), (std::vector<uint64_t>{0, 1})) << "nothing changed";

  try {
    writer->ScavengeStart();
    ADD_FAILURE() << "scavenge needs the admin role";
  } catch (const client::Error& e) {
    EXPECT_EQ(e.kind(), client::Error::Kind::kPermissionDenied) << e.what();
  }
  EXPECT_TRUE(writer->TruncateStream("s", 1).ok());
  auto admin = Client::Connect(esd.rpc_address(), "a-token");
  EXPECT_EQ(admin->GetScavengeStatus().state, "idle");
}

TEST(Lifecycle, MetricsCountTheDeletesAndTheCalls) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  AppendN(*c, "a", 1);
  AppendN(*c, "b", 1);
  ASSERT_TRUE(c->DeleteStream("a").ok());
  ASSERT_TRUE(c->DeleteStream("b", Expected::Any(), true).ok());
  EXPECT_EQ(c->DeleteStream("b").outcome, Outcome::kStreamDeleted);
  const std::string m = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_NE(m.find("esd_streams_deleted_total{kind=\"soft\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("esd_streams_deleted_total{kind=\"hard\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("esd_lifecycle_calls_total{call=\"delete_stream\",outcome=\"ok\"} 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("esd_lifecycle_calls_total{call=\"delete_stream\",outcome=\"stream_deleted\"} 1\n"),
            std::string::npos)
      << m;
  EXPECT_EQ(MetricSample(m, "esd_scavenge_running"), 0) << m;
  EXPECT_EQ(MetricSample(m, "esd_scavenge_bytes_reclaimed_total"), 0) << m;
}

// ---- Scavenge (its storage side is tests/storage's; these need it merged) ----

// 100 events of ~2 KB, every other one to "doomed", which is then hard-deleted: with
// --segment-size 65536, three sealed segments and more, half of them removed events.
void HalfOfItDeleted(Client& c) {
  const std::string big(2000, 'x');
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(c.Append(i % 2 == 0 ? "doomed" : "kept", Expected::Any(),
                         {NewEvent::Json("E", "{\"pad\":\"" + big + "\"}")})
                    .ok());
  }
  ASSERT_TRUE(c.DeleteStream("doomed", Expected::Any(), true).ok());
}

TEST(Lifecycle, ScavengeFreesADeletedStreamsBytesAndSaysSoInStatusMetricsAndLog) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data", {"--segment-size", "65536", "--max-event-size", "16384"});
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_NO_FATAL_FAILURE(HalfOfItDeleted(*c));

  const auto started = c->ScavengeStart();
  ASSERT_TRUE(started.started) << started.reason;
  EXPECT_TRUE(esd.WaitForOutput("scavenge started")) << esd.Output();
  // The daemon logs the end of a run once it has ended: a barrier, then its status.
  EXPECT_TRUE(esd.WaitForOutput("scavenge finished")) << esd.Output();
  const client::ScavengeStatus s = c->GetScavengeStatus();
  ASSERT_EQ(s.state, "finished") << s.error;
  EXPECT_GT(s.segments_total, 0u);
  EXPECT_EQ(s.segments_done, s.segments_total);
  EXPECT_GT(s.segments_rewritten, 0u);
  EXPECT_GT(s.bytes_reclaimed, 0u);
  EXPECT_GT(s.events_removed, 0u);
  EXPECT_GE(s.finished_micros, s.started_micros);

  EXPECT_EQ(Versions(*c, "kept").size(), 50u) << "what was kept is all there";
  const std::string m = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_EQ(MetricSample(m, "esd_scavenge_running"), 0) << m;
  EXPECT_EQ(MetricSample(m, "esd_scavenge_bytes_reclaimed_total"), static_cast<double>(s.bytes_reclaimed)) << m;
  EXPECT_EQ(MetricSample(m, "esd_scavenge_events_removed_total"), static_cast<double>(s.events_removed)) << m;
  EXPECT_EQ(MetricSample(m, "esd_scavenge_segments_rewritten_total"), static_cast<double>(s.segments_rewritten)) << m;
  EXPECT_EQ(MetricSample(m, "esd_scavenge_bytes_read_total"), static_cast<double>(s.bytes_read)) << m;

  // A second run adds to the totals, which count every run since the start.
  ASSERT_TRUE(c->ScavengeStart().started);
  EXPECT_TRUE(esd.WaitForOutput("scavenge finished", 2)) << esd.Output();
  const client::ScavengeStatus again = c->GetScavengeStatus();
  ASSERT_EQ(again.state, "finished") << again.error;
  const std::string m2 = testing::HttpGet(esd.http_address(), "/metrics");
  EXPECT_EQ(MetricSample(m2, "esd_scavenge_bytes_read_total"), static_cast<double>(s.bytes_read + again.bytes_read)) << m2;
  EXPECT_EQ(MetricSample(m2, "esd_scavenge_runs_total"), 2) << m2;
}

TEST(Lifecycle, ScavengeMaxReadRateCapsTheScavengeAndItsStatusSaysSo) {
  storage::testing::TempDir dir;
  // 1 byte per second: the run is still reading its first segment when it is stopped.
  EsdProcess esd(dir.path() / "data",
                 {"--segment-size", "65536", "--max-event-size", "16384", "--scavenge-max-read-rate", "1"});
  EXPECT_NE(esd.Output().find("scavenge_max_read_rate=1"), std::string::npos) << esd.Output();
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_NO_FATAL_FAILURE(HalfOfItDeleted(*c));
  const auto started = c->ScavengeStart();
  ASSERT_TRUE(started.started) << started.reason;
  EXPECT_EQ(started.status.read_rate_cap, 1u) << "the store was not given the flag's cap";
  EXPECT_TRUE(c->GetScavengeStatus().running());
  const auto stop = c->ScavengeStop();
  EXPECT_TRUE(stop.was_running);
  EXPECT_TRUE(esd.WaitForOutput("scavenge stopped")) << esd.Output();
  const client::ScavengeStatus s = c->GetScavengeStatus();
  EXPECT_EQ(s.state, "stopped") << s.error;
  EXPECT_EQ(s.read_rate_cap, 1u);
  EXPECT_EQ(Versions(*c, "kept").size(), 50u);
}

TEST(Lifecycle, StoppingWithNoScavengeRunningSaysNoneWasRunning) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  const auto stop = c->ScavengeStop();
  EXPECT_FALSE(stop.was_running);
  EXPECT_EQ(stop.status.state, "idle");
}

}  // namespace
}  // namespace esd
