// esctl scavenge start | status | stop, against a real esd. The runs that reclaim need the
// store's scavenge (storage/scavenge.h).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"
#include "tools/esctl_scavenge.h"

namespace esd {
namespace {

using client::Expected;
using client::NewEvent;

// A store of small segments in which a hard-deleted stream holds half the log.
void FillWithADeletedStream(client::Client& c) {
  const std::string pad(2000, 'x');
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        c.Append(i % 2 == 0 ? "doomed" : "kept", Expected::Any(), {NewEvent::Json("E", "{\"pad\":\"" + pad + "\"}")})
            .ok());
  }
  ASSERT_TRUE(c.DeleteStream("doomed", Expected::Any(), true).ok());
}

TEST(EsctlScavenge, StatusBeforeAnyRunSaysIdleAndHowToStartOne) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  Result r = RunEsctl({"--connect", esd.rpc_address(), "scavenge", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "state           idle (none since esd started; `esctl scavenge start` starts one)\n");
  r = RunEsctl({"--connect", esd.rpc_address(), "--json", "scavenge", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("{\"state\":\"idle\",\"startedAt\":null,\"finishedAt\":null,", 0), 0u) << r.out;
}

TEST(EsctlScavenge, StopWithNoneRunningSaysSoAndSucceeds) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "scavenge", "stop"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("no scavenge is running (the last: idle); nothing to stop"), std::string::npos) << r.err;
}

TEST(EsctlScavenge, OnlyTheAdminRoleScavengesAndTheOthersAreToldSo) {
  storage::testing::TempDir dir;
  const auto tokens = dir.path() / "tokens";
  std::ofstream(tokens) << "w-token writer\na-token admin\n";
  testing::EsdProcess esd(dir.path() / "data", {"--auth", tokens.string()});
  for (const char* sub : {"start", "status", "stop"}) {
    const Result r = RunEsctl({"--connect", esd.rpc_address(), "--token", "w-token", "scavenge", sub});
    EXPECT_EQ(r.code, 1) << sub << ": " << r.err;
    EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("This command needs a token with a higher role (status, verify, backup, replay, snapshot "
                         "and scavenge need admin;"),
              std::string::npos)
        << r.err;
  }
  EXPECT_EQ(RunEsctl({"--connect", esd.rpc_address(), "--token", "a-token", "scavenge", "status"}).code, 0);
}

TEST(EsctlScavenge, StartFollowsTheRunToItsEndAndSaysWhatItFreed) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data", {"--segment-size", "65536", "--max-event-size", "16384"});
  auto c = client::Client::Connect(esd.rpc_address());
  FillWithADeletedStream(*c);
  Result r = RunEsctl({"--connect", esd.rpc_address(), "scavenge", "start"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("the daemon keeps serving meanwhile (Ctrl-C stops following, not the scavenge)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.rfind("scavenge finished: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" reclaimed, "), std::string::npos) << r.out;
  const client::ScavengeStatus s = c->GetScavengeStatus();
  EXPECT_EQ(s.state, "finished");
  EXPECT_GT(s.bytes_reclaimed, 0u);
  EXPECT_NE(r.out.find(std::to_string(s.events_removed) + " removed events dropped"), std::string::npos) << r.out;

  r = RunEsctl({"--connect", esd.rpc_address(), "--json", "scavenge", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"state\":\"finished\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"bytesReclaimed\":" + std::to_string(s.bytes_reclaimed) + ","), std::string::npos) << r.out;
  r = RunEsctl({"--connect", esd.rpc_address(), "scavenge", "status"});
  EXPECT_NE(r.out.find("state           finished\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reclaimed       "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" MB/s\n"), std::string::npos) << r.out;
}

TEST(EsctlScavenge, StartWithoutWaitingSaysHowToFollowAndASecondStartIsRefusedWhileItRuns) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data", {"--segment-size", "65536", "--max-event-size", "16384"});
  auto c = client::Client::Connect(esd.rpc_address());
  FillWithADeletedStream(*c);
  Result r = RunEsctl({"--connect", esd.rpc_address(), "scavenge", "start", "--no-wait"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "scavenge started; it runs in esd: see it with `esctl scavenge status`, stop it with `esctl "
                   "scavenge stop`\n")
      << r.out;
  // Whether the first is still running when the second asks depends on the machine: each
  // answer must be the one that goes with what the daemon says.
  r = RunEsctl({"--connect", esd.rpc_address(), "scavenge", "start", "--no-wait"});
  size_t runs = 1;
  if (r.code == 3) {
    EXPECT_NE(r.err.find("scavenge not started: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("; one is running: see it with `esctl scavenge status`, stop it with `esctl scavenge stop`"),
              std::string::npos)
        << r.err;
  } else {
    EXPECT_EQ(r.code, 0) << r.err;
    runs = 2;
  }
  // The daemon logs the end of each run (a failed one says "scavenge failed").
  EXPECT_TRUE(esd.WaitForOutput("scavenge finished", runs)) << esd.Output();
  EXPECT_NE(c->GetScavengeStatus().state, "failed");
}

TEST(ScavengeText, SaysProgressReclaimedBytesAndTheRate) {
  client::ScavengeStatus s;
  s.state = "running";
  s.started_micros = 1'000'000;
  s.segments_total = 4;
  s.segments_done = 1;
  s.segments_rewritten = 1;
  s.bytes_total = 400'000'000;
  s.bytes_read = 100'000'000;
  s.bytes_reclaimed = 50'000'000;
  s.events_removed = 1234;
  EXPECT_EQ(esctl::ScavengeText(s, 3'000'000, false),
            "state           running\n"
            "started         1970-01-01T00:00:01.000000Z\n"
            "finished        -\n"
            "segments        1 of 4 done, 1 rewritten\n"
            "read            100.0 MB of 400.0 MB (25%)\n"
            "reclaimed       50.0 MB (50000000 bytes)\n"
            "events removed  1234\n"
            "rate            50.0 MB/s\n");
  // Capped by the daemon's flag: said, with the flag.
  s.read_rate_cap = 20'000'000;
  EXPECT_NE(esctl::ScavengeText(s, 3'000'000, false)
                .find("read cap        20.0 MB/s (esd --scavenge-max-read-rate 20000000)\n"),
            std::string::npos);
  EXPECT_NE(esctl::ScavengeText(s, 3'000'000, true).find("\"readRateCap\":20000000"), std::string::npos);
  s.read_rate_cap = 0;
  s.state = "failed";
  s.finished_micros = 2'000'000;
  s.error = "pwrite failed";
  const std::string json = esctl::ScavengeText(s, 9'000'000, true);
  EXPECT_NE(json.find("\"finishedAt\":\"1970-01-01T00:00:02.000000Z\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"rateMBps\":100"), std::string::npos) << "to its end, not to now: " << json;
  EXPECT_NE(json.find("\"error\":\"pwrite failed\""), std::string::npos) << json;
}

TEST(ScavengeText, FollowingEndsWithHowToGoOn) {
  client::ScavengeStatus s;
  s.state = "running";
  EXPECT_EQ(esctl::FollowEndNote(s, true),
            "stopped following; the scavenge goes on in esd: see it with `esctl scavenge status`, stop it with "
            "`esctl scavenge stop`");
  s.state = "failed";
  s.error = "I/O error: pwrite failed";
  EXPECT_EQ(esctl::FollowEndNote(s, false),
            "the scavenge failed: I/O error: pwrite failed; what it rewrote before stays rewritten. See the esd log, "
            "then run `esctl scavenge start` again");
  s.state = "finished";
  EXPECT_EQ(esctl::FollowEndNote(s, false), "");
  EXPECT_EQ(esctl::StopText(true, "stopping"),
            "asked the scavenge to stop after the segment it is on; what it rewrote stays rewritten. `esctl scavenge "
            "status` says when it has stopped\n");
}

}  // namespace
}  // namespace esd
