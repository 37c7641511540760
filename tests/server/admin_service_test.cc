// Admin over RPC against a real esd: long calls report progress that ends at 100% before
// they answer; snapshots are listed, read, written and deleted by the daemon; a request it
// cannot do fails with a sentence for the operator.
#include "server/admin_service.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "client/client.h"
#include "domain/snapshots.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

using client::Client;
using Figures = std::vector<std::pair<uint64_t, uint64_t>>;

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() / "data";
    esd_ = std::make_unique<testing::EsdProcess>(data_, std::vector<std::string>{"--segment-size", "1048576", "--max-event-size", "65536"});
    c_ = Client::Connect(esd_->rpc_address());
    std::vector<client::NewEvent> batch;
    for (int i = 0; i < 100; ++i) batch.push_back(client::NewEvent::Json("E", "{\"pad\":\"" + std::string(900, 'x') + "\"}"));
    for (int i = 0; i < 30; ++i) {
      for (auto& e : batch) e.id = client::NewEventId();
      ASSERT_TRUE(c_->Append("bulk-" + std::to_string(i % 3), client::Expected::Any(), batch).ok());
    }
    ASSERT_TRUE(c_->CreateOrder("a1", "ann").ok());
  }
  // The figures a call reported, checked to move forward and to end at done == total.
  static void ExpectEndsComplete(const Figures& f) {
    ASSERT_FALSE(f.empty()) << "at least the final report";
    for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i].first, f[i - 1].first) << "progress never goes back";
    for (const auto& [done, total] : f) EXPECT_GT(total, 0u) << "a report always has a total";
    EXPECT_EQ(f.back().first, f.back().second);
  }
  storage::testing::TempDir dir_;
  std::filesystem::path data_;
  std::unique_ptr<testing::EsdProcess> esd_;
  std::unique_ptr<Client> c_;
};

TEST_F(AdminTest, VerifyReportsProgressInBytesUpToTheWholeLog) {
  Figures f;
  const auto report = c_->Verify([&](uint64_t done, uint64_t total) { f.emplace_back(done, total); });
  EXPECT_TRUE(report.problems.empty());
  EXPECT_GE(report.segments, 3u) << "3 MB of events in 1 MiB segments";
  ExpectEndsComplete(f);
  EXPECT_GE(f.back().first, 3'000'000u) << "bytes of log, all of it";
}

TEST_F(AdminTest, BackupProgressEndsAtTheBytesItCopied) {
  Figures f;
  const auto b = c_->Backup((dir_.path() / "copy").string(), [&](uint64_t d, uint64_t t) { f.emplace_back(d, t); });
  EXPECT_EQ(b.position, 3001u);
  ExpectEndsComplete(f);
  EXPECT_EQ(f.back().first, b.bytes);
}

TEST_F(AdminTest, RebuildProgressCountsTheEventsRead) {
  Figures f;
  const uint64_t read = c_->RebuildProjection("orders", [&](uint64_t d, uint64_t t) { f.emplace_back(d, t); });
  EXPECT_EQ(read, 3001u);
  ExpectEndsComplete(f);
  EXPECT_EQ(f.back().first, read);
}

TEST_F(AdminTest, WithoutAProgressCallbackTheCallsAnswerAllTheSame) {
  EXPECT_TRUE(c_->Verify().problems.empty());
  EXPECT_EQ(c_->RebuildProjection("orders"), 3001u);
}

TEST_F(AdminTest, SnapshotsAreWrittenReadListedAndDeletedByTheDaemon) {
  const auto target = Client::SnapshotTarget::Stream("order-a1");
  const auto made = c_->CreateSnapshot(target);
  ASSERT_TRUE(made.has_value());
  EXPECT_TRUE(made->ok);
  EXPECT_EQ(made->name, "order-a1");
  EXPECT_EQ(made->version, 0u);
  const auto bytes = c_->ReadSnapshot(target);
  ASSERT_TRUE(bytes.has_value());
  const auto parsed = domain::ParseSnapshotFile(*bytes);
  ASSERT_TRUE(parsed.has_value()) << "the file as it is on disk, checksums and all";
  EXPECT_EQ(domain::DecodeOrderSnapshot(parsed->body)->customer_id, "ann");
  EXPECT_FALSE(c_->CreateSnapshot(Client::SnapshotTarget::Stream("order-nobody")).has_value());

  const auto projection = c_->CreateSnapshot(Client::SnapshotTarget::Projection("orders"));
  ASSERT_TRUE(projection.has_value());
  EXPECT_TRUE(projection->projection);
  EXPECT_EQ(projection->orders, 1u);
  const auto listed = c_->ListSnapshots();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].file, made->file);
  EXPECT_EQ(listed[1].file, "snapshots/projections/orders.snap");

  EXPECT_EQ(c_->DeleteSnapshot(target), made->file);
  EXPECT_FALSE(std::filesystem::exists(data_ / made->file));
  EXPECT_FALSE(c_->DeleteSnapshot(target).has_value());
  EXPECT_FALSE(c_->ReadSnapshot(target).has_value());
}

TEST_F(AdminTest, ASnapshotIsReadInPagesThatEachNameTheFileTheyCameFrom) {
  const auto target = Client::SnapshotTarget::Stream("order-a1");
  ASSERT_TRUE(c_->CreateSnapshot(target).has_value());
  const std::string whole = c_->ReadSnapshot(target).value();
  std::string stitched;
  uint64_t tag = 0;
  for (uint64_t offset = 0;;) {
    const auto page = c_->ReadSnapshotPage(target, offset, 64);
    ASSERT_TRUE(page.found);
    EXPECT_EQ(page.total_bytes, whole.size());
    if (offset == 0) tag = page.file_tag;
    EXPECT_EQ(page.file_tag, tag) << "the same file";
    ASSERT_LE(page.bytes.size(), 64u);
    stitched += page.bytes;
    offset += page.bytes.size();
    if (offset == page.total_bytes) break;
    ASSERT_FALSE(page.bytes.empty()) << "a page short of the end has bytes";
  }
  EXPECT_EQ(stitched, whole);
  EXPECT_EQ(c_->ReadSnapshotPage(target, 0, UINT32_MAX).bytes, whole) << "capped at 16 MiB, not refused";
  EXPECT_EQ(c_->ReadSnapshotPage(target, 0, 0).bytes, whole) << "0: the whole file, as before paging";
  EXPECT_TRUE(c_->ReadSnapshotPage(target, whole.size() + 100, 64).bytes.empty()) << "past the end: nothing";

  // Written again, even with the same content: a page of the new file has another tag, so
  // a reader never stitches two files together.
  ASSERT_TRUE(c_->CreateSnapshot(target).has_value());
  EXPECT_NE(c_->ReadSnapshotPage(target, 64, 64).file_tag, tag);
}

TEST_F(AdminTest, OnlyThePageThatReachesTheEndSaysWhyTheSnapshotWouldNotLoad) {
  const auto target = Client::SnapshotTarget::Stream("order-a1");
  const auto made = c_->CreateSnapshot(target);
  ASSERT_TRUE(made.has_value());
  storage::testing::FlipByte(data_ / made->file, std::filesystem::file_size(data_ / made->file) - 3);
  EXPECT_EQ(c_->ReadSnapshotPage(target, 0, 64).problem, "");
  const auto last = c_->ReadSnapshotPage(target, 64, 16u << 20);
  EXPECT_EQ(64 + last.bytes.size(), last.total_bytes);
  EXPECT_EQ(last.problem, "its body is damaged (checksum mismatch)");
  std::string problem;
  ASSERT_TRUE(c_->ReadSnapshot(target, &problem).has_value());
  EXPECT_EQ(problem, "its body is damaged (checksum mismatch)");
}

TEST_F(AdminTest, WhatCannotBeDoneFailsWithASentenceAndTheDaemonServesOn) {
  try {
    c_->RebuildProjection("nope");
    ADD_FAILURE() << "an unknown projection";
  } catch (const client::Error& e) {
    EXPECT_EQ(std::string(e.what()), "unknown projection 'nope' (there is one: orders)");
  }
  try {
    c_->CreateSnapshot(Client::SnapshotTarget::Stream("bulk-1"));
    ADD_FAILURE() << "only orders have snapshots";
  } catch (const client::Error& e) {
    EXPECT_NE(std::string(e.what()).find("only order streams"), std::string::npos) << e.what();
  }
  try {
    c_->Backup(data_.string());
    ADD_FAILURE() << "a directory that holds something";
  } catch (const client::Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be new or empty"), std::string::npos) << e.what();
  }
  EXPECT_EQ(c_->Status().durable_position, 3001u);
}

}  // namespace
}  // namespace esd
