// esctl read and read-all with --data-dir: a stopped store's files print exactly what the
// daemon prints for them, paging and filters included, and damage the same way (the events
// before it, then its place, exit 4); a running daemon is named.
#include <gtest/gtest.h>
#include <signal.h>

#include "client/client.h"
#include "server/damaged_store.h"
#include "server/esd_process.h"
#include "server/long_streams.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

class EsctlOfflineReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() / "data";
    esd_ = std::make_unique<testing::EsdProcess>(data_);
    auto c = client::Client::Connect(esd_->rpc_address());
    // 2,500 events: more than one page (1,000) of either command.
    for (int i = 0; i < 25; ++i) {
      std::vector<client::NewEvent> batch;
      for (int k = 0; k < 100; ++k) {
        batch.push_back(client::NewEvent::Json(k % 2 ? "Odd" : "Even", "{\"k\":" + std::to_string(k) + "}"));
      }
      ASSERT_TRUE(c->Append(i % 2 ? "left-1" : "right-1", client::Expected::Any(), batch).ok());
    }
  }
  // The same command online (while esd runs) and offline (after it stopped).
  std::pair<Result, Result> Both(const std::vector<std::string>& args) {
    std::vector<std::string> online = {"--connect", esd_->rpc_address()};
    online.insert(online.end(), args.begin(), args.end());
    Result on = RunEsctl(online);
    if (esd_) {
      EXPECT_EQ(esd_->Stop(SIGTERM), 0);
      esd_.reset();
    }
    std::vector<std::string> offline = {"--data-dir", data_.string()};
    offline.insert(offline.end(), args.begin(), args.end());
    return {on, RunEsctl(offline)};
  }
  storage::testing::TempDir dir_;
  std::filesystem::path data_;
  std::unique_ptr<testing::EsdProcess> esd_;
};

TEST_F(EsctlOfflineReadTest, ReadPrintsWhatTheDaemonPrintsForwardsAndBackwards) {
  const std::vector<std::string> fwd = {"read", "left-1"}, back = {"--json", "read", "right-1", "--backward", "--count", "1500"};
  std::vector<std::string> online_fwd = {"--connect", esd_->rpc_address()};
  online_fwd.insert(online_fwd.end(), fwd.begin(), fwd.end());
  const Result on_fwd = RunEsctl(online_fwd);
  const auto [on, off] = Both(back);
  const Result off_fwd = RunEsctl({"--data-dir", data_.string(), "read", "left-1"});
  ASSERT_EQ(off_fwd.code, 0) << off_fwd.err;
  EXPECT_EQ(Lines(off_fwd.out).size(), 1200u);
  EXPECT_EQ(off_fwd.out, on_fwd.out);
  ASSERT_EQ(off.code, 0) << off.err;
  EXPECT_EQ(Lines(off.out).size(), 1300u);
  EXPECT_EQ(off.out, on.out);
}

TEST_F(EsctlOfflineReadTest, ReadAllWithFiltersPrintsWhatTheDaemonPrints) {
  const auto [on, off] = Both({"read-all", "--from", "7", "--stream-prefix", "right-", "--type", "Odd"});
  ASSERT_EQ(off.code, 0) << off.err;
  EXPECT_EQ(Lines(off.out).size(), 647u) << "13 batches of right-1, 50 Odd each, less 1, 3 and 5";
  EXPECT_EQ(off.out, on.out);
}

TEST_F(EsctlOfflineReadTest, AStreamWithoutEventsSaysSoAndARunningDaemonIsNamed) {
  Result r = RunEsctl({"--data-dir", data_.string(), "read", "nothing-here"});
  EXPECT_EQ(r.code, 1) << "esd runs on it";
  EXPECT_NE(r.err.find("pid " + std::to_string(esd_->pid())), std::string::npos) << r.err;
  ASSERT_EQ(esd_->Stop(SIGTERM), 0);
  esd_.reset();
  r = RunEsctl({"--data-dir", data_.string(), "read", "nothing-here"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("has no events"), std::string::npos) << r.err;
}

TEST(EsctlPagedRead, AStreamWhosePagesAreCutByBytesPrintsEveryEventOnceOnlineAndOffline) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data";
  constexpr uint64_t kEvents = 36;  // of ~500 KB: 18 MB, more than one answer holds (16 MiB)
  Result on_fwd, on_back;
  {
    testing::EsdProcess esd(data);
    testing::AppendBigEvents(*client::Client::Connect(esd.rpc_address()), "big", kEvents);
    on_fwd = RunEsctl({"--connect", esd.rpc_address(), "read", "big"});
    on_back = RunEsctl({"--connect", esd.rpc_address(), "read", "big", "--backward"});
    ASSERT_EQ(esd.Stop(SIGTERM), 0);
  }
  const Result off_fwd = RunEsctl({"--data-dir", data.string(), "read", "big"});
  const Result off_back = RunEsctl({"--data-dir", data.string(), "read", "big", "--backward"});
  for (const Result* r : std::initializer_list<const Result*>{&on_fwd, &off_fwd, &on_back, &off_back}) {
    ASSERT_EQ(r->code, 0) << r->err;
    const auto lines = Lines(r->out);
    ASSERT_EQ(lines.size(), kEvents);
    for (uint64_t i = 0; i < kEvents; ++i) {
      const uint64_t v = r == &on_fwd || r == &off_fwd ? i : kEvents - 1 - i;
      const std::string start = std::to_string(v) + " big@" + std::to_string(v) + " Big ";
      ASSERT_EQ(lines[i].rfind(start, 0), 0u) << lines[i].substr(0, 40);
    }
  }
  EXPECT_EQ(off_fwd.out, on_fwd.out);
  EXPECT_EQ(off_back.out, on_back.out);
}

class EsctlDamagedReadTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = testing::MakeDamagedStore(data_); }
  // `args` run against esd on the store, then (esd stopped) against its files.
  std::pair<Result, Result> Both(const std::vector<std::string>& args) {
    Result on;
    {
      testing::EsdProcess esd(data_, testing::kSmallSegmentArgs);
      std::vector<std::string> online = {"--connect", esd.rpc_address()};
      online.insert(online.end(), args.begin(), args.end());
      on = RunEsctl(online);
      EXPECT_EQ(esd.Stop(SIGTERM), 0) << esd.Output();
    }
    std::vector<std::string> offline = {"--data-dir", data_.string()};
    offline.insert(offline.end(), args.begin(), args.end());
    return {on, RunEsctl(offline)};
  }
  storage::testing::TempDir dir_;
  const std::filesystem::path data_ = dir_.path() / "data";
  testing::DamagedStore store_;
};

TEST_F(EsctlDamagedReadTest, ReadAllPrintsTheEventsBeforeTheDamageThenNamesItAndExitsFour) {
  const auto [on, off] = Both({"read-all"});
  for (const Result& r : {on, off}) {
    EXPECT_EQ(r.code, 4) << r.err;
    const auto lines = Lines(r.out);
    ASSERT_EQ(lines.size(), store_.damaged_position) << r.err;
    EXPECT_EQ(lines.back().rfind(std::to_string(store_.damaged_position - 1) + " ", 0), 0u) << lines.back();
    EXPECT_NE(r.err.find("the log is damaged at " + store_.Place()), std::string::npos) << r.err;
  }
  EXPECT_EQ(off.out, on.out);
}

TEST_F(EsctlDamagedReadTest, ReadOfAStreamThatReachesDamageExitsFourNamingIt) {
  const auto [on, off] = Both({"read", "order-o-damaged"});
  for (const Result& r : {on, off}) {
    EXPECT_EQ(r.code, 4) << r.err;
    EXPECT_NE(r.err.find(store_.Place()), std::string::npos) << r.err;
  }
  const Result intact = RunEsctl({"--data-dir", data_.string(), "read", "intact"});
  EXPECT_EQ(intact.code, 0) << intact.err;
  EXPECT_EQ(Lines(intact.out).size(), store_.intact_events);
}

TEST(EsctlOffline, CommandsThatNeedADaemonRefuseDataDirBeforeTouchingIt) {
  storage::testing::TempDir dir;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"tail"}, {"append", "s", "--type", "T", "--data", "{}"}, {"order", "get", "o1"}}) {
    std::vector<std::string> full = {"--data-dir", dir.path().string()};
    full.insert(full.end(), args.begin(), args.end());
    const Result r = RunEsctl(full);
    EXPECT_EQ(r.code, 2) << args[0];
    EXPECT_NE(r.err.find("needs a running esd"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace esd
