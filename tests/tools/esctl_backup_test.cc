// esctl backup: a copy of a running store, taken under load, that esd starts from and that
// holds every event acknowledged below the backup's position, byte for byte; and offline,
// a copy of a stopped store.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <filesystem>
#include <regex>
#include <thread>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"
#include "tools/esctl_run.h"

namespace esd {
namespace {

struct Acked {
  std::string stream;
  uint64_t version, position;
  client::EventId id;
  std::string data;
};

TEST(EsctlBackup, ABackupUnderLoadStartsAndHoldsEveryAcknowledgedEventBelowItsPosition) {
  storage::testing::TempDir dir;
  const auto dest = dir.path() / "backup";
  std::mutex mu;
  std::vector<Acked> acked;
  uint64_t position = 0;
  {
    testing::EsdProcess esd(dir.path() / "data");
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 3; ++t) {
      writers.emplace_back([&, t] {
        auto c = client::Client::Connect(esd.rpc_address());
        const std::string stream = "load-" + std::to_string(t);
        for (int i = 0; !stop.load(); ++i) {
          client::NewEvent e = client::NewEvent::Json("E", "{\"i\":" + std::to_string(i) + ",\"pad\":\"" +
                                                                std::string(200, 'x') + "\"}");
          auto r = c->Append(stream, client::Expected::Any(), {e});
          ASSERT_TRUE(r.ok()) << r.reason;
          std::lock_guard lock(mu);
          acked.push_back({stream, r.first_version, r.first_position, e.id, e.data});
        }
      });
    }
    while (true) {
      std::lock_guard lock(mu);
      if (acked.size() >= 300) break;
    }
    const Result r = RunEsctl({"--connect", esd.rpc_address(), "backup", dest.string()});
    stop = true;
    for (auto& w : writers) w.join();
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("backup: 100%"), std::string::npos) << "the daemon's progress: " << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("below position (\\d+)"))) << r.out;
    position = std::stoull(m[1]);
  }
  ASSERT_GE(position, 300u);
  testing::EsdProcess restored(dest);  // restoring is starting esd on the copy
  auto c = client::Client::Connect(restored.rpc_address());
  size_t checked = 0;
  for (const Acked& a : acked) {
    if (a.position >= position) continue;
    auto events = c->ReadStream(a.stream, a.version, 1);
    ASSERT_TRUE(events && events->size() == 1) << a.stream << "@" << a.version;
    const auto& e = events->front();
    EXPECT_EQ(e.position, a.position);
    EXPECT_EQ(e.id, a.id);
    EXPECT_EQ(e.data, a.data) << "byte for byte";
    ++checked;
  }
  EXPECT_GE(checked, 300u);
  EXPECT_EQ(c->ReadAll(position, 10).events.size(), 0u) << "nothing past the backup's position";
  EXPECT_TRUE(c->Append("after-restore", client::Expected::NoStream(), {client::NewEvent::Json("E", "{}")}).ok());
}

TEST(EsctlBackup, IntoADirectoryThatHoldsSomethingIsRefused) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  const Result r = RunEsctl({"--connect", esd.rpc_address(), "backup", (dir.path() / "data").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("new or empty"), std::string::npos) << r.err;
}

TEST(EsctlBackup, OfflineACopyOfAStoppedStoreStartsAndHoldsEveryEvent) {
  storage::testing::TempDir dir;
  const auto data = dir.path() / "data", dest = dir.path() / "copy";
  {
    testing::EsdProcess esd(data);
    auto c = client::Client::Connect(esd.rpc_address());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(c->Append("s", client::Expected::Any(), {client::NewEvent::Json("E", "{\"i\":" + std::to_string(i) + "}")}).ok());
    }
    ASSERT_TRUE(c->CreateOrder("b1", "bea").ok());
    ASSERT_EQ(esd.Stop(SIGTERM), 0);
  }
  Result r = RunEsctl({"--data-dir", data.string(), "backup", dest.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("every event below position 51"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("backup: 100%"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dest / "snapshots" / "projections" / "orders.snap")) << "snapshots come along";
  const Result before = RunEsctl({"--data-dir", data.string(), "read", "s"});
  testing::EsdProcess restored(dest);
  const Result after = RunEsctl({"--connect", restored.rpc_address(), "read", "s"});
  ASSERT_EQ(after.code, 0) << after.err;
  EXPECT_EQ(after.out, before.out) << "the same events, ids and times";
  auto c = client::Client::Connect(restored.rpc_address());
  EXPECT_EQ(c->GetOrder("b1").order->customer_id, "bea");
}

TEST(EsctlBackup, OfflineARunningDaemonIsNamedAndNothingIsCopied) {
  storage::testing::TempDir dir;
  testing::EsdProcess esd(dir.path() / "data");
  const Result r = RunEsctl({"--data-dir", (dir.path() / "data").string(), "backup", (dir.path() / "copy").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("pid " + std::to_string(esd.pid())), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "copy"));
}

// Changes the working directory for its lifetime: the daemon and esctl inherit the one that
// is current when they start.
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const std::filesystem::path& dir) : previous_(std::filesystem::current_path()) {
    std::filesystem::create_directories(dir);
    std::filesystem::current_path(dir);
  }
  ~WorkingDirectory() { std::filesystem::current_path(previous_); }

 private:
  std::filesystem::path previous_;
};

TEST(EsctlBackup, ARelativeDestinationIsWhereEsctlRunsNotWhereTheDaemonRuns) {
  storage::testing::TempDir dir;
  const auto esd_cwd = dir.path() / "esd-cwd", esctl_cwd = dir.path() / "esctl-cwd";
  std::optional<testing::EsdProcess> esd;
  {
    WorkingDirectory in(esd_cwd);
    esd.emplace(dir.path() / "data");
  }
  ASSERT_TRUE(client::Client::Connect(esd->rpc_address())
                  ->Append("s", client::Expected::Any(), {client::NewEvent::Json("E", "{}")})
                  .ok());
  Result r;
  {
    WorkingDirectory in(esctl_cwd);
    r = RunEsctl({"--connect", esd->rpc_address(), "backup", "copies/today"});
  }
  ASSERT_EQ(r.code, 0) << r.err;
  const auto expected = (esctl_cwd / "copies" / "today").lexically_normal();
  EXPECT_TRUE(std::filesystem::exists(expected / "segments")) << r.out;
  EXPECT_FALSE(std::filesystem::exists(esd_cwd / "copies")) << "not in the daemon's working directory";
  EXPECT_NE(r.out.find("into " + expected.string()), std::string::npos) << "the absolute path is named: " << r.out;
}

}  // namespace
}  // namespace esd
