// ScavengeWatch: the log lines about scavenges and the /metrics totals over every run.
#include "server/scavenge_watch.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "log/log.h"

namespace esd::server {
namespace {

using State = storage::ScavengeStatus::State;

storage::ScavengeStatus RunOf(State state, uint64_t started, uint64_t bytes_read, uint64_t reclaimed = 0,
                            uint64_t removed = 0, uint64_t rewritten = 0) {
  storage::ScavengeStatus s;
  s.state = state;
  s.started_micros = started;
  s.finished_micros = (state == State::kRunning || state == State::kStopping) ? 0 : started + 2'000'000;
  s.segments_total = 4;
  s.segments_done = state == State::kFinished ? 4 : 1;
  s.segments_rewritten = rewritten;
  s.bytes_total = 1000;
  s.bytes_read = bytes_read;
  s.bytes_reclaimed = reclaimed;
  s.events_removed = removed;
  return s;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class ScavengeWatchTest : public ::testing::Test {
 protected:
  void SetUp() override { log::Init(log::Level::kInfo, log::Format::kText, out_); }
  void TearDown() override { log::Init(log::Level::kInfo, log::Format::kText); }
  std::ostringstream out_;
  ScavengeWatch watch_;
};

TEST_F(ScavengeWatchTest, TotalsAddUpEveryRunAndTheOneRunningNow) {
  EXPECT_EQ(watch_.TotalsWith(storage::ScavengeStatus{}).runs, 0u) << "idle: no run yet";
  watch_.Started(storage::ScavengeStatus{}, RunOf(State::kRunning, 100, 0), "admin", "");
  EXPECT_TRUE(watch_.TotalsWith(RunOf(State::kRunning, 100, 400, 50, 7, 1)).running);
  // The first run ended with more than the last look saw; the second starts before any poll.
  const storage::ScavengeStatus first_final = RunOf(State::kFinished, 100, 1000, 300, 20, 2);
  watch_.Started(first_final, RunOf(State::kRunning, 900, 0), "admin", "");
  const auto t = watch_.TotalsWith(RunOf(State::kStopping, 900, 250, 10, 3, 1));
  EXPECT_TRUE(t.running);
  EXPECT_EQ(t.runs, 2u);
  EXPECT_EQ(t.bytes_read, 1250u);
  EXPECT_EQ(t.bytes_reclaimed, 310u);
  EXPECT_EQ(t.events_removed, 23u);
  EXPECT_EQ(t.segments_rewritten, 3u);
  EXPECT_FALSE(watch_.TotalsWith(RunOf(State::kStopped, 900, 250, 10, 3, 1)).running);
}

TEST_F(ScavengeWatchTest, AStartSaysWhoAskedAndARefusalWhy) {
  watch_.Started(storage::ScavengeStatus{}, RunOf(State::kRunning, 100, 0), "a token with the admin role", "");
  watch_.Started(RunOf(State::kRunning, 100, 10), RunOf(State::kRunning, 100, 10), "a token with the admin role",
                 "a scavenge is running already");
  const std::string log = out_.str();
  EXPECT_NE(log.find("scavenge started by=\"a token with the admin role\"\n"), std::string::npos)
      << log;
  EXPECT_NE(log.find("scavenge not started: a scavenge is running already"), std::string::npos) << log;
  EXPECT_EQ(watch_.TotalsWith(RunOf(State::kRunning, 100, 10)).runs, 1u) << "a refused start is no run";
}

TEST_F(ScavengeWatchTest, TheEndIsLoggedOnceWithItsFigures) {
  watch_.Started(storage::ScavengeStatus{}, RunOf(State::kRunning, 100, 0), "admin", "");
  watch_.Poll(RunOf(State::kRunning, 100, 500));
  EXPECT_EQ(out_.str().find("scavenge finished"), std::string::npos);
  watch_.Poll(RunOf(State::kFinished, 100, 1000, 600, 42, 3));
  watch_.Poll(RunOf(State::kFinished, 100, 1000, 600, 42, 3));
  const std::string log = out_.str();
  EXPECT_EQ(Count(log, "scavenge finished"), 1u) << log;
  EXPECT_NE(log.find("segments_rewritten=3 bytes_read=1000 bytes_reclaimed=600 events_removed=42 seconds=2"),
            std::string::npos)
      << log;
}

TEST_F(ScavengeWatchTest, ARunThatEndedUnseenIsLoggedWhenTheNextStarts) {
  watch_.Started(storage::ScavengeStatus{}, RunOf(State::kRunning, 100, 0), "admin", "");
  watch_.Started(RunOf(State::kStopped, 100, 300), RunOf(State::kRunning, 900, 0), "admin", "");
  const std::string log = out_.str();
  EXPECT_NE(log.find("scavenge stopped"), std::string::npos) << log;
  EXPECT_LT(log.find("scavenge stopped"), log.rfind("scavenge started")) << log;
}

TEST_F(ScavengeWatchTest, AFailureIsAnErrorThatSaysHowToGoOn) {
  storage::ScavengeStatus failed = RunOf(State::kFailed, 100, 300);
  failed.error = storage::Status::IOError("pwrite segments/x.seg.scavenge: No space left on device");
  watch_.Poll(failed);
  const std::string log = out_.str();
  EXPECT_NE(log.find("error esd: scavenge failed: "), std::string::npos) << log;
  EXPECT_NE(log.find("No space left on device; what it rewrote before stays rewritten, `esctl scavenge start` goes on"),
            std::string::npos)
      << log;
}

TEST_F(ScavengeWatchTest, AStopNamesWhoAskedAndHowFarItWas) {
  watch_.StopAsked(RunOf(State::kStopping, 100, 300), "admin");
  EXPECT_NE(out_.str().find("scavenge asked to stop after the segment it is on by=admin state=stopping segments_done=1 "
                            "segments_total=4"),
            std::string::npos)
      << out_.str();
}

}  // namespace
}  // namespace esd::server
