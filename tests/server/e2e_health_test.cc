// /health, /ready and /metrics of a real esd: each answer, and each metric family moving
// for the reason it counts. `promtool check metrics` judges a real scrape when the Debian
// package prometheus is installed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <string>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using client::CommandOutcome;
using client::Expected;
using client::NewEvent;
using testing::EsdProcess;
using testing::MetricSample;

struct Http {
  int status = 0;
  std::string body;
};

Http Get(const EsdProcess& esd, const std::string& path) {
  const std::string raw = testing::HttpGet(esd.http_address(), path);
  Http r;
  if (raw.size() > 12) r.status = std::atoi(raw.substr(9, 3).c_str());  // "HTTP/1.1 200 OK"
  if (const size_t at = raw.find("\r\n\r\n"); at != std::string::npos) r.body = raw.substr(at + 4);
  return r;
}

// With a newline in front, so that every sample line starts with "\n". (Not `"\n" + body`:
// g++ 12 warns of that as -Wrestrict.)
std::string Scrape(const EsdProcess& esd) {
  std::string scrape = "\n";
  scrape += Get(esd, "/metrics").body;
  return scrape;
}

TEST(Health, AServingDaemonIsAliveAndReadyInJson) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  const Http health = Get(esd, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(nlohmann::json::parse(health.body), nlohmann::json({{"status", "alive"}})) << health.body;
  const Http ready = Get(esd, "/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ready.body), nlohmann::json({{"status", "ready"}})) << ready.body;
}

// A disk that really fills: a tmpfs of 1 MiB under the data directory (needs root).
TEST(Health, AFullDiskMakesTheDaemonNotReadyUntilAnAppendSucceedsAgain) {
  storage::testing::TempDir dir;
  if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=1048576") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "); needs root";
  }
  struct Unmount {
    std::filesystem::path path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{dir.path()};
  EsdProcess esd(dir.path() / "data", {"--segment-size", "65536", "--max-event-size", "16384"});
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->Append("warm", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  {
    std::FILE* f = std::fopen((dir.path() / "ballast").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string block(4096, 'b');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  const std::string payload = "{\"pad\":\"" + std::string(2000, 'x') + "\"}";
  client::AppendResult r;
  for (int i = 0; i < 1000; ++i) {
    r = c->Append("full", Expected::Any(), {NewEvent::Json("E", payload)});
    if (!r.ok()) break;
  }
  ASSERT_FALSE(r.ok()) << "the disk never filled";

  const Http full = Get(esd, "/ready");
  EXPECT_EQ(full.status, 503) << full.body;
  const auto body = nlohmann::json::parse(full.body);
  EXPECT_EQ(body["status"], "not ready");
  ASSERT_EQ(body["reasons"].size(), 1u) << full.body;
  EXPECT_EQ(body["reasons"][0].get<std::string>().rfind("out of space: ", 0), 0u) << full.body;
  EXPECT_EQ(Get(esd, "/health").status, 200) << "a full disk is no reason to restart";
  const std::string scrape = Scrape(esd);
  EXPECT_GE(MetricSample(scrape, "esd_appends_total{outcome=\"out_of_space\"}").value_or(0), 1) << scrape;
  EXPECT_LT(MetricSample(scrape, "esd_data_dir_free_bytes").value_or(1e18), 65536) << scrape;

  std::filesystem::remove(dir.path() / "ballast");
  ASSERT_TRUE(c->Append("full", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  const Http back = Get(esd, "/ready");
  EXPECT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(esd.Stop(SIGTERM), 0) << esd.Output();
}

TEST(Metrics, AppendsAreCountedByOutcomeAndTimedByMethod) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->Append("s", Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());
  ASSERT_TRUE(c->Append("s", Expected::Exact(0), {NewEvent::Json("E", "{}")}).ok());
  auto wrong = c->Append("s", Expected::NoStream(), {NewEvent::Json("E", "{}")});
  ASSERT_FALSE(wrong.ok());
  auto reserved = c->Append("$reserved", Expected::Any(), {NewEvent::Json("E", "{}")});
  ASSERT_FALSE(reserved.ok());

  const std::string scrape = Scrape(esd);
  EXPECT_EQ(MetricSample(scrape, "esd_appends_total{outcome=\"ok\"}"), 2) << scrape;
  EXPECT_EQ(MetricSample(scrape, "esd_appends_total{outcome=\"wrong_expected_version\"}"), 1);
  EXPECT_EQ(MetricSample(scrape, "esd_appends_total{outcome=\"invalid_argument\"}"), 1);
  EXPECT_EQ(MetricSample(scrape, "esd_log_appends_total"), 2);
  EXPECT_EQ(MetricSample(scrape, "esd_rpc_duration_seconds_count{service=\"EventStore\",method=\"append\"}"), 4);
  EXPECT_EQ(MetricSample(scrape, "esd_rpc_duration_seconds_bucket{service=\"EventStore\",method=\"append\",le=\"+Inf\"}"), 4);
  EXPECT_FALSE(MetricSample(scrape, "esd_rpc_duration_seconds_count{service=\"EventStore\",method=\"readAll\"}"))
      << "a method never called has no series";
  c->ReadAll(0, 10);
  EXPECT_EQ(MetricSample(Scrape(esd), "esd_rpc_duration_seconds_count{service=\"EventStore\",method=\"readAll\"}"), 1);
}

TEST(Metrics, OrderCommandsAreCountedByOutcomeAndRule) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->CreateOrder("o1", "alice").ok());
  EXPECT_EQ(c->PlaceOrder("o1").rule, "order-empty");
  EXPECT_EQ(c->PlaceOrder("o1").rule, "order-empty");
  EXPECT_EQ(c->PlaceOrder("nobody").rule, "order-not-found");

  const std::string scrape = Scrape(esd);
  EXPECT_EQ(MetricSample(scrape, "esd_order_commands_total{outcome=\"ok\"}"), 1) << scrape;
  EXPECT_EQ(MetricSample(scrape, "esd_order_commands_total{outcome=\"rejected\",rule=\"order-empty\"}"), 2);
  EXPECT_EQ(MetricSample(scrape, "esd_order_commands_total{outcome=\"rejected\",rule=\"order-not-found\"}"), 1);
  EXPECT_EQ(MetricSample(scrape, "esd_rpc_duration_seconds_count{service=\"OrderService\",method=\"placeOrder\"}"), 3);
}

TEST(Metrics, TheLastVerifyAndBackupSayWhenAndWhetherTheySucceeded) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  std::string scrape = Scrape(esd);
  EXPECT_EQ(MetricSample(scrape, "esd_last_verify_timestamp_seconds"), 0) << "none yet\n" << scrape;
  EXPECT_EQ(MetricSample(scrape, "esd_last_verify_success"), 0);
  EXPECT_EQ(MetricSample(scrape, "esd_last_backup_timestamp_seconds"), 0);

  const double before = static_cast<double>(std::time(nullptr)) - 1;
  EXPECT_TRUE(c->Verify().problems.empty());
  ASSERT_NO_THROW(c->Backup((dir.path() / "backup").string()));
  scrape = Scrape(esd);
  EXPECT_GE(MetricSample(scrape, "esd_last_verify_timestamp_seconds").value_or(0), before) << scrape;
  EXPECT_EQ(MetricSample(scrape, "esd_last_verify_success"), 1);
  EXPECT_GE(MetricSample(scrape, "esd_last_backup_timestamp_seconds").value_or(0), before);
  EXPECT_EQ(MetricSample(scrape, "esd_last_backup_success"), 1);
  EXPECT_EQ(MetricSample(scrape, "esd_rpc_duration_seconds_count{service=\"Admin\",method=\"verify\"}"), 1);

  // The same destination again: it holds a store now, so the backup fails.
  EXPECT_ANY_THROW(c->Backup((dir.path() / "backup").string()));
  scrape = Scrape(esd);
  EXPECT_EQ(MetricSample(scrape, "esd_last_backup_success"), 0) << scrape;
  EXPECT_EQ(MetricSample(scrape, "esd_last_verify_success"), 1) << "a failed backup says nothing of verify";
}

TEST(Metrics, ASubscriberThatDoesNotReadFallsBehindAndCatchesUpWhenItDoes) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  EXPECT_EQ(MetricSample(Scrape(esd), "esd_subscription_lag_events"), 0) << "no subscription";
  auto reader = Client::Connect(esd.rpc_address());
  size_t received = 0;
  auto sub = reader->Subscribe(client::SubscribeFrom::Start(), {},
                               [&](const std::vector<client::RecordedEvent>& events) { received += events.size(); });
  // 40 events of ~900 KB: far more than the socket buffers hold while `reader` does not read.
  // They are appended from another thread: a call on this one would run `reader`'s loop.
  constexpr size_t kEvents = 40;
  auto appended = std::async(std::launch::async, [&] {
    auto writer = Client::Connect(esd.rpc_address());
    const std::string big = "\"" + std::string(900'000, 'x') + "\"";
    for (size_t i = 0; i < kEvents; ++i) {
      if (!writer->Append("big", Expected::Any(), {NewEvent::Json("E", big)}).ok()) return false;
    }
    return true;
  });
  ASSERT_TRUE(appended.get());
  const std::string behind = Scrape(esd);
  EXPECT_GT(MetricSample(behind, "esd_subscription_lag_events").value_or(0), 0) << behind;
  EXPECT_EQ(MetricSample(behind, "esd_subscriptions"), 1);

  ASSERT_TRUE(reader->RunUntil([&] { return received == kEvents; }, std::chrono::seconds(60)));
  EXPECT_EQ(MetricSample(Scrape(esd), "esd_subscription_lag_events"), 0);
}

TEST(Metrics, TheProcessCollectorAndFreeSpaceAreReported) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  const std::string scrape = Scrape(esd);
  EXPECT_GT(MetricSample(scrape, "process_cpu_seconds_total").value_or(-1), 0) << scrape;
  EXPECT_GT(MetricSample(scrape, "process_resident_memory_bytes").value_or(0), 1 << 20);
  EXPECT_GT(MetricSample(scrape, "process_virtual_memory_bytes").value_or(0), 1 << 20);
  const double fds = MetricSample(scrape, "process_open_fds").value_or(0);
  EXPECT_GT(fds, 3) << "segments, sockets, the lock file ...";
  EXPECT_GE(MetricSample(scrape, "process_max_fds").value_or(0), fds);
  EXPECT_GT(MetricSample(scrape, "process_start_time_seconds").value_or(0), static_cast<double>(std::time(nullptr)) - 600);
  EXPECT_GT(MetricSample(scrape, "esd_data_dir_free_bytes").value_or(0), 0);
}

TEST(Metrics, LogBytesAndAllocatedBytesAreToldApart) {
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  const std::string before = Scrape(esd);
  const double log_before = MetricSample(before, "esd_log_bytes").value_or(-1);
  EXPECT_GT(log_before, 0) << "a segment's header at least: " << before;
  EXPECT_GT(MetricSample(before, "esd_allocated_bytes").value_or(0), log_before) << "zeros are kept ahead of the writer";
  EXPECT_EQ(MetricSample(before, "esd_fill_waits_total"), 0.0);
  auto c = Client::Connect(esd.rpc_address());
  ASSERT_TRUE(c->Append("s", Expected::Any(), {NewEvent::Json("E", std::string(1000, 'x'))}).ok());
  EXPECT_GT(MetricSample(Scrape(esd), "esd_log_bytes").value_or(0), log_before + 1000);
}

TEST(Metrics, PromtoolAcceptsARealScrape) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not on PATH: install the Debian package prometheus to check the exposition format";
  }
  storage::testing::TempDir dir;
  EsdProcess esd(dir.path() / "data");
  auto c = Client::Connect(esd.rpc_address());
  // Something in every labelled family.
  ASSERT_TRUE(c->Append("s", Expected::Any(), {NewEvent::Json("E", "{}")}).ok());
  ASSERT_FALSE(c->Append("s", Expected::NoStream(), {NewEvent::Json("E", "{}")}).ok());
  ASSERT_TRUE(c->CreateOrder("o1", "alice").ok());
  EXPECT_EQ(c->PlaceOrder("o1").rule, "order-empty");
  c->Verify();
  const auto file = dir.path() / "scrape.txt";
  std::ofstream(file) << Get(esd, "/metrics").body;
  const auto out = dir.path() / "promtool.txt";
  const std::string cmd = "promtool check metrics < " + file.string() + " > " + out.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream said(out);
  const std::string text((std::istreambuf_iterator<char>(said)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << text;
  EXPECT_EQ(text, "") << "promtool finds nothing to say (lint problems too)";
}

}  // namespace
}  // namespace esd
