#include "server/health.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <string>

#include "storage/open_store.h"
#include "storage/test_util.h"

namespace esd::server {
namespace {

using storage::ExpectedVersion;
using storage::FileOp;
using storage::InjectedFault;
using storage::testing::MakeEvents;
using storage::testing::TempDir;
using Clock = LoopHeartbeat::Clock;

nlohmann::json Body(const HttpResponse& r) {
  EXPECT_EQ(r.content_type, "application/json");
  return nlohmann::json::parse(r.body);
}

// The reasons of a 503, joined, for matching.
std::string Reasons(const HttpResponse& r) {
  std::string all;
  const nlohmann::json body = Body(r);  // kept: the loop below walks into it
  for (const auto& reason : body.at("reasons")) all += reason.get<std::string>() + "\n";
  return all;
}

std::unique_ptr<storage::Store> OpenStoreWith4MiBSegments(const TempDir& dir) {
  storage::Options options = storage::testing::SmallOptions();
  options.segment_size = 4u << 20;
  return storage::testing::OpenStore(dir, options);
}

// Fails the next pwrite of a segment file with `error`, once, when armed.
storage::testing::ScriptedFaults::Script FailNextSegmentWrite(std::atomic<bool>& armed, int error) {
  return [&armed, error](FileOp op, const std::filesystem::path& path) {
    if (op == FileOp::kWrite && path.extension() == ".seg" && armed.exchange(false)) return InjectedFault{error};
    return InjectedFault{};
  };
}

TEST(Heartbeat, ALoopThatTurnedLatelyIsAliveAndOneSilentPastTheLimitIsNot) {
  const Clock::time_point t0 = Clock::now();
  LoopHeartbeat beat(t0);
  HealthFacts facts;
  facts.loop_silence = beat.Silence(t0 + kLoopStallLimit - std::chrono::milliseconds(1));
  HttpResponse alive = HealthResponse(facts);
  EXPECT_EQ(alive.status, 200);
  EXPECT_EQ(Body(alive), nlohmann::json({{"status", "alive"}}));

  facts.loop_silence = beat.Silence(t0 + kLoopStallLimit + std::chrono::seconds(2));
  HttpResponse stalled = HealthResponse(facts);
  EXPECT_EQ(stalled.status, 503);
  EXPECT_EQ(Body(stalled)["status"], "not alive");
  EXPECT_NE(Reasons(stalled).find("has not turned for 12 s (limit 10 s)"), std::string::npos) << stalled.body;
  EXPECT_EQ(ReadyResponse(facts).status, 503) << "a daemon that is not alive is not ready";

  beat.Beat(t0 + std::chrono::seconds(20));
  EXPECT_EQ(beat.Silence(t0 + std::chrono::seconds(21)), std::chrono::seconds(1));
  EXPECT_EQ(beat.Silence(t0), Clock::duration::zero()) << "a beat later than now is no silence";
}

TEST(Readiness, AWritableStoreWithACurrentProjectionIsReady) {
  TempDir dir;
  auto store = OpenStoreWith4MiBSegments(dir);
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 3)).ok());
  LoopHeartbeat beat;
  HttpResponse r = ReadyResponse(GatherHealthFacts(*store, beat, 3, false));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), nlohmann::json({{"status", "ready"}}));
}

TEST(Readiness, AProjectionStoppedAtDamageIsNotReadyAtOnceNamingThePlaceAndTheCommands) {
  HealthFacts facts;
  facts.durable_position = 120;
  facts.projection_checkpoint = 100;  // within the lag bound: the damage alone says not ready
  facts.projection_damage = "segments/00000000000000000000.seg offset 4096 (position 100): checksum does not verify";
  const HttpResponse r = ReadyResponse(facts);
  EXPECT_EQ(r.status, 503);
  ASSERT_EQ(Body(r)["reasons"].size(), 1u) << r.body;
  const std::string reason = Body(r)["reasons"][0];
  EXPECT_EQ(reason.rfind("the order projection stopped at damaged bytes of the log: segments/", 0), 0u) << reason;
  EXPECT_NE(reason.find("(position 100): checksum does not verify; order queries answer as of position 100"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("esctl --data-dir DIR verify"), std::string::npos) << reason;
  EXPECT_NE(reason.find("esctl --data-dir DIR salvage"), std::string::npos) << reason;
  EXPECT_EQ(HealthResponse(facts).status, 200) << "damage in the log is no reason to restart";
}

TEST(Readiness, OutOfSpaceIsNotReadyUntilAnAppendSucceedsAgain) {
  TempDir dir;
  auto store = OpenStoreWith4MiBSegments(dir);
  LoopHeartbeat beat;
  std::atomic<bool> full{true};
  storage::testing::ScriptedFaults faults(FailNextSegmentWrite(full, ENOSPC));
  ASSERT_FALSE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());

  HttpResponse r = ReadyResponse(GatherHealthFacts(*store, beat, 0, false));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Body(r)["status"], "not ready");
  EXPECT_EQ(Reasons(r).rfind("out of space: ", 0), 0u) << r.body;
  EXPECT_EQ(HealthResponse(GatherHealthFacts(*store, beat, 0, false)).status, 200) << "full is still alive";

  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  r = ReadyResponse(GatherHealthFacts(*store, beat, 1, false));
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST(Readiness, AStoreThatFailedAfterAnIOErrorIsNotReady) {
  TempDir dir;
  auto store = OpenStoreWith4MiBSegments(dir);
  LoopHeartbeat beat;
  std::atomic<bool> broken{true};
  storage::testing::ScriptedFaults faults(FailNextSegmentWrite(broken, EIO));
  ASSERT_FALSE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());

  HttpResponse r = ReadyResponse(GatherHealthFacts(*store, beat, 0, false));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Reasons(r).rfind("the store has failed: ", 0), 0u) << r.body;
  EXPECT_NE(r.body.find("restart"), std::string::npos) << "it says what to do: " << r.body;
}

TEST(Readiness, AProjectionMoreThanTheBoundBehindIsNotReady) {
  TempDir dir;
  auto store = OpenStoreWith4MiBSegments(dir);
  ASSERT_TRUE(store->AppendSync("a", ExpectedVersion::Any(), MakeEvents("a", 0, kReadyMaxProjectionLag)).ok());
  ASSERT_TRUE(store->AppendSync("b", ExpectedVersion::Any(), MakeEvents("b", 0, 1)).ok());
  LoopHeartbeat beat;

  HttpResponse behind = ReadyResponse(GatherHealthFacts(*store, beat, 0, false));
  EXPECT_EQ(behind.status, 503);
  EXPECT_NE(Reasons(behind).find("the order projection is 10001 events behind the log (at most 10000"),
            std::string::npos)
      << behind.body;
  EXPECT_EQ(ReadyResponse(GatherHealthFacts(*store, beat, 1, false)).status, 200) << "exactly at the bound is ready";
}

TEST(Readiness, AGracefulStopIsNotReadyAndEveryReasonIsListed) {
  TempDir dir;
  auto store = OpenStoreWith4MiBSegments(dir);
  ASSERT_TRUE(store->AppendSync("a", ExpectedVersion::Any(), MakeEvents("a", 0, kReadyMaxProjectionLag)).ok());
  ASSERT_TRUE(store->AppendSync("b", ExpectedVersion::Any(), MakeEvents("b", 0, 5)).ok());
  LoopHeartbeat beat;
  HttpResponse r = ReadyResponse(GatherHealthFacts(*store, beat, 0, true));
  EXPECT_EQ(r.status, 503);
  const auto reasons = Body(r)["reasons"];
  ASSERT_EQ(reasons.size(), 2u) << r.body;
  EXPECT_EQ(reasons[0], "shutting down: new appends are refused");
  EXPECT_NE(reasons[1].get<std::string>().find("order projection"), std::string::npos);
}

}  // namespace
}  // namespace esd::server
