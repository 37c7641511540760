// The daemon's log, end to end, on a real esd: what start-up says (version, flags, what
// recovery did), a log line for every failure a client is told to "see the esd log" about
// (each driven for real), JSON lines that parse, and what a graceful stop waited for.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.h"
#include "domain/snapshots.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

using client::Client;
using testing::EsdProcess;

bool Has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

std::vector<std::string> LinesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// An esd on a fresh data directory, and an esctl command line aimed at it.
class LogTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args = {}) {
    esd_ = std::make_unique<EsdProcess>(data_, std::move(args));
  }
  Result RunEsctlOnIt(std::vector<std::string> args) {
    args.insert(args.begin(), {"--connect", esd_->rpc_address()});
    return RunEsctl(std::move(args));
  }
  storage::testing::TempDir dir_;
  std::filesystem::path data_ = dir_.path() / "data";
  std::unique_ptr<EsdProcess> esd_;
};

TEST_F(LogTest, StartUpSaysTheVersionTheFlagsThatMatterAndWhatRecoveryFound) {
  Start({"--fsync", "interval=20", "--log-level", "debug"});
  // Start() returns on the stdout line; the log's ready line follows it.
  ASSERT_TRUE(esd_->WaitForOutput("esd: ready rpc=")) << esd_->Output();
  const std::string log = esd_->Output();
  EXPECT_TRUE(Has(log, std::string(" info  esd: starting version=") + ESD_VERSION + " data=" + data_.string() +
                           " listen=127.0.0.1:0 http=127.0.0.1:0 fsync=\"interval=20\" segment_size=4194304"))
      << log;
  EXPECT_TRUE(Has(log, " auth=off tls=off log_level=debug")) << log;
  EXPECT_TRUE(Has(log, "esd: recovery: the store is open segments=1 events=0 ")) << log;
  EXPECT_TRUE(Has(log, "esd: the order projection has no snapshot: it catches up from position 0 of 0")) << log;
  EXPECT_TRUE(Has(log, "esd: ready rpc=" + esd_->rpc_address() + " http=" + esd_->http_address())) << log;
  EXPECT_TRUE(Has(log, "esd ready: rpc=" + esd_->rpc_address() + " http=")) << "the stdout line stays: " << log;
}

TEST_F(LogTest, ARestartSaysWhatItOpenedAndThatTheProjectionSnapshotWasLoaded) {
  Start();
  ASSERT_TRUE(Client::Connect(esd_->rpc_address())->CreateOrder("o1", "ann").ok());
  ASSERT_EQ(esd_->Stop(SIGTERM), 0) << esd_->Output();
  Start();
  ASSERT_TRUE(esd_->WaitForOutput("esd: ready rpc=")) << esd_->Output();  // the log's, after stdout's
  const std::string log = esd_->Output();
  EXPECT_TRUE(Has(log, "esd: recovery: the store is open segments=1 events=1 ")) << log;
  EXPECT_TRUE(Has(log, "esd: the order projection's snapshot is loaded: it catches up from position 1 of 1")) << log;
}

TEST_F(LogTest, ATornTailIsCutAndTheLogSaysWhy) {
  {
    auto store = storage::Store::Open(data_, storage::testing::SmallOptions()).value();
    std::vector<storage::EventData> events(1);
    events[0].id = storage::EventId::Random();
    events[0].type = "E";
    events[0].data = std::string(64, 'T') + "TORN-MARK";
    ASSERT_TRUE(store->AppendSync("s", storage::ExpectedVersion::Any(), std::move(events)).ok());
  }
  const auto seg = storage::testing::SegmentFiles(data_).back();
  const auto bytes = storage::testing::ReadFileBytes(seg);
  const std::string mark = "TORN-MARK";
  const auto at = std::search(bytes.begin(), bytes.end(), mark.begin(), mark.end());
  ASSERT_NE(at, bytes.end());
  storage::testing::FlipByte(seg, static_cast<uint64_t>(at - bytes.begin()));  // the last batch: nothing vouches
  Start();
  ASSERT_TRUE(esd_->WaitForOutput("esd: ready rpc=")) << esd_->Output();  // the log's, after stdout's
  const std::string log = esd_->Output();
  EXPECT_TRUE(Has(log, " warn  esd: recovery: segments/" + seg.filename().string())) << log;
  EXPECT_TRUE(Has(log, "events=0 ")) << log;
  EXPECT_FALSE(Has(log, "torn_bytes_cut=0 ")) << log;
}

// ---- every "See the esd log" a client is given has its line in the log ----

TEST_F(LogTest, ABackupIntoAFolderThatIsNotEmptyIsLogged) {
  Start();
  const auto dest = dir_.path() / "not-empty";
  std::filesystem::create_directories(dest);
  std::ofstream(dest / "something") << "x";
  const Result r = RunEsctlOnIt({"backup", dest.string()});
  EXPECT_NE(r.code, 0);
  ASSERT_TRUE(Has(r.err, "See the esd log")) << r.err;
  EXPECT_TRUE(esd_->WaitForOutput(" warn  esd: Admin.backup failed: the backup failed: ")) << esd_->Output();
  EXPECT_TRUE(Has(esd_->Output(), dest.string())) << "the line names the folder: " << esd_->Output();
}

TEST_F(LogTest, AnUnknownProjectionIsLogged) {
  Start();
  const Result r = RunEsctlOnIt({"replay", "nope"});
  EXPECT_NE(r.code, 0);
  ASSERT_TRUE(Has(r.err, "See the esd log")) << r.err;
  EXPECT_TRUE(esd_->WaitForOutput(
      "esd: Admin.rebuildProjection failed: unknown projection 'nope' (there is one: orders) call=Admin.rebuildProjection"))
      << esd_->Output();
}

TEST_F(LogTest, ASnapshotThatCannotBeWrittenIsLogged) {
  Start();
  ASSERT_TRUE(Client::Connect(esd_->rpc_address())->CreateOrder("o1", "ann").ok());
  // A file where the projection's snapshot folder must be: no write there succeeds, root or not.
  const auto folder = domain::ProjectionSnapshotPath(data_).parent_path();
  std::filesystem::remove_all(folder);
  std::ofstream(folder) << "in the way";
  const Result r = RunEsctlOnIt({"snapshot", "create", "--projection", "orders"});
  EXPECT_NE(r.code, 0);
  ASSERT_TRUE(Has(r.err, "See the esd log")) << r.err;
  EXPECT_TRUE(esd_->WaitForOutput("esd: Admin.createSnapshot failed: writing the snapshot failed: ")) << esd_->Output();
}

TEST_F(LogTest, ASnapshotOfAStreamThatHasNoneIsLogged) {
  Start();
  // esctl refuses this before it asks; another client gets the server's failure, which
  // esctl would answer with "See the esd log" (kRemote).
  try {
    Client::Connect(esd_->rpc_address())->CreateSnapshot(Client::SnapshotTarget::Stream("not-an-order"));
    ADD_FAILURE() << "the call succeeded";
  } catch (const client::Error& e) {
    EXPECT_EQ(e.kind(), client::Error::Kind::kRemote) << e.what();
  }
  EXPECT_TRUE(esd_->WaitForOutput(
      "esd: Admin.createSnapshot failed: 'not-an-order' has no snapshots: only order streams (order-ID) do"))
      << esd_->Output();
}

TEST_F(LogTest, AVerifyThatCannotRunIsLogged) {
  Start();
  // The segments' folder gone from under the running daemon (its files stay open): verify
  // cannot list what to check. Put back before the stop.
  const auto segments = data_ / "segments", away = data_ / "segments-away";
  std::filesystem::rename(segments, away);
  const Result r = RunEsctlOnIt({"verify"});
  std::filesystem::rename(away, segments);
  EXPECT_NE(r.code, 0);
  ASSERT_TRUE(Has(r.err, "See the esd log")) << r.err;
  EXPECT_TRUE(esd_->WaitForOutput(" warn  esd: Admin.verify failed: verify could not run: ")) << esd_->Output();
}

TEST_F(LogTest, AnOrderCommandTheServerFailsIsLogged) {
  Start();
  const std::string id(300, 'x');  // order-<id> is longer than a stream name may be
  const Result r = RunEsctlOnIt({"order", "create", id, "--customer", "ann"});
  EXPECT_NE(r.code, 0);
  ASSERT_TRUE(Has(r.err, "See the esd log")) << r.err;
  EXPECT_TRUE(esd_->WaitForOutput(" warn  esd: a command on order-" + id + " failed: ")) << esd_->Output();
}

// ---- formats and stop ----

TEST_F(LogTest, JsonLinesParseAndCarryTheirFields) {
  Start({"--log-format", "json"});
  EXPECT_THROW(Client::Connect(esd_->rpc_address())->RebuildProjection("nope"), client::Error);
  ASSERT_TRUE(esd_->WaitForOutput("Admin.rebuildProjection failed")) << esd_->Output();
  ASSERT_EQ(esd_->Stop(SIGTERM), 0);
  size_t json_lines = 0;
  bool started = false, ready = false, failed = false, stopped = false;
  for (const auto& line : LinesOf(esd_->Output())) {
    if (line.rfind("esd ready: ", 0) == 0) continue;  // stdout, for scripts
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ++json_lines;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    if (j["msg"] == "starting") started = j.value("version", "") == ESD_VERSION && j.value("auth", "") == "off";
    if (j["msg"] == "ready") ready = j.value("rpc", "") == esd_->rpc_address() && j["events"].is_number();
    if (j.value("call", "") == "Admin.rebuildProjection") failed = j["level"] == "warn";
    if (j["msg"] == "stopped") stopped = j["stop_millis"].is_number();
  }
  EXPECT_GE(json_lines, 5u);
  EXPECT_TRUE(started && ready && failed && stopped) << esd_->Output();
}

TEST_F(LogTest, WarnLevelLeavesOutTheInfoLines) {
  Start({"--log-level", "warn"});
  EXPECT_THROW(Client::Connect(esd_->rpc_address())->RebuildProjection("nope"), client::Error);
  ASSERT_TRUE(esd_->WaitForOutput("Admin.rebuildProjection failed")) << esd_->Output();
  const std::string log = esd_->Output();
  EXPECT_FALSE(Has(log, " info  esd: ")) << log;
  EXPECT_TRUE(Has(log, "esd ready: ")) << "stdout is no log line: " << log;
}

TEST_F(LogTest, AGracefulStopSaysTheSignalWhatItWaitedForAndHowLong) {
  Start();
  auto c = Client::Connect(esd_->rpc_address());  // open through the stop
  ASSERT_TRUE(c->CreateOrder("o1", "ann").ok());
  ASSERT_EQ(esd_->Stop(SIGINT), 0);
  const std::string log = esd_->Output();
  EXPECT_TRUE(Has(log, "esd: SIGINT: stopping: no new connections; answering calls in flight signal=SIGINT "
                       "connections=1 subscriptions=0 appends_in_flight=0"))
      << log;
  EXPECT_TRUE(Has(log, "esd: stop: saved the order projection's snapshot at position 1")) << log;
  EXPECT_TRUE(Has(log, "esd: stopped stop_millis=")) << log;
}

TEST_F(LogTest, AStopTellsTheSubscribersItEndsAndSaysSo) {
  Start();
  auto c = Client::Connect(esd_->rpc_address());
  ASSERT_TRUE(c->Append("s", client::Expected::Any(), {client::NewEvent::Json("E", "{}")}).ok());
  Esctl tail({"--connect", esd_->rpc_address(), "tail", "--from", "start"});
  EXPECT_EQ(tail.ReadLine().rfind("0 s@0 E ", 0), 0u) << "the subscription is live";
  ASSERT_EQ(esd_->Stop(SIGTERM), 0);
  const std::string log = esd_->Output();
  EXPECT_TRUE(Has(log, "subscriptions=1")) << log;
  EXPECT_TRUE(Has(log, "esd: stop: told 1 subscriber(s) that the server is shutting down")) << log;
}

}  // namespace
}  // namespace esd
