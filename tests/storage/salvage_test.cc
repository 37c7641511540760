// Salvage: the way past damage before the tail. It moves the damaged part of the log aside,
// deletes nothing, and leaves a store that opens with every event before the damage.
#include "storage/salvage.h"

#include <gtest/gtest.h>


#include "storage/format.h"
#include "storage/store.h"
#include "storage/verify.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::BatchOffsets;
using testing::MakeEvents;
using testing::SegmentFiles;
using testing::SmallOptions;
using testing::TempDir;

// `n` single-event appends to streams s-0..s-3 (event i is version i / 4 of s-(i % 4)).
void Fill(const std::filesystem::path& dir, int n) {
  auto store = Store::Open(dir, SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int i = 0; i < n; ++i) {
    const std::string s = "s-" + std::to_string(i % 4);
    ASSERT_TRUE((*store)->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, i / 4, 1, 0, 300)).ok());
  }
}

uint64_t EventsIn(Store& store) {
  auto all = store.ReadAll(GlobalPosition(0), 1'000'000);
  EXPECT_TRUE(all.ok()) << all.status().ToString();
  return all.ok() ? all->size() : 0;
}

std::vector<std::filesystem::path> FilesUnder(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  return out;
}

TEST(Salvage, DamageInTheActiveSegmentIsMovedAsideAndTheStoreOpensWithEverythingBefore) {
  TempDir dir;
  Fill(dir.path(), 12);
  const auto seg = SegmentFiles(dir.path()).back();
  const auto offsets = BatchOffsets(seg);
  testing::FlipByte(seg, offsets[5] + format::kBatchHeaderSize + 80);
  const auto damaged = testing::ReadFileBytes(seg);
  ASSERT_EQ(Store::Open(dir.path(), SmallOptions()).status().code(), Status::Code::kCorruption);

  auto report = SalvageStore(dir.path());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_TRUE(report->damage.has_value());
  EXPECT_EQ(report->damage->offset, offsets[5]);
  EXPECT_EQ(report->damage->position, 5u);
  EXPECT_EQ(report->log_end, GlobalPosition(5));
  EXPECT_NE(report->problem.find("checksum"), std::string::npos) << report->problem;
  // The whole segment as it was found, byte for byte, and a note saying why.
  EXPECT_EQ(testing::ReadFileBytes(report->quarantine / seg.filename()), damaged);
  EXPECT_TRUE(std::filesystem::exists(report->quarantine / "SALVAGE.txt"));

  auto store = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(EventsIn(**store), 5u);
  auto r = (*store)->AppendSync("after", ExpectedVersion::NoStream(), MakeEvents("after", 0, 1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_position, GlobalPosition(5));
}

// A file cut by something else a few bytes into a batch whose header starts with zeros
// (Recovery.AShortFileCutInsideABatchHeaderWhoseFirstBytesAreZerosIsRefused): open refuses
// it, and salvage cuts at that batch, keeping everything before it.
TEST(Salvage, AShortFileCutInsideABatchHeaderIsCutAtThatBatch) {
  TempDir dir;
  Fill(dir.path(), 6);
  const auto seg = SegmentFiles(dir.path()).back();
  const uint64_t last = BatchOffsets(seg).back();
  testing::ZeroRange(seg, last, 1);
  testing::TruncateFile(seg, last + 1);
  ASSERT_EQ(Store::Open(dir.path(), SmallOptions()).status().code(), Status::Code::kCorruption);

  auto report = SalvageStore(dir.path());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_TRUE(report->damage.has_value());
  EXPECT_EQ(report->damage->offset, last);
  EXPECT_EQ(report->log_end, GlobalPosition(5));
  EXPECT_NE(report->problem.find("cut it short"), std::string::npos) << report->problem;
  auto store = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(EventsIn(**store), 5u);
}

TEST(Salvage, DamageInASealedSegmentMovesItAndEveryLaterSegmentAside) {
  TempDir dir;
  Fill(dir.path(), 600);
  const auto segs = SegmentFiles(dir.path());
  ASSERT_GE(segs.size(), 4u);
  const auto offsets = BatchOffsets(segs[1]);
  testing::FlipByte(segs[1], offsets[10] + 100);
  GlobalPosition damaged_at;
  {
    // Open takes it (sealed segments are not scanned at open), but reads refuse the damage.
    auto store = Store::Open(dir.path(), SmallOptions());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto all = (*store)->ReadAll(GlobalPosition(0), 1'000'000);
    ASSERT_EQ(all.status().code(), Status::Code::kCorruption);
    ASSERT_TRUE(all.status().damage() && all.status().damage()->position);
    damaged_at = GlobalPosition(*all.status().damage()->position);
  }
  const size_t files_before = FilesUnder(dir.path() / "segments").size();
  auto report = SalvageStore(dir.path());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_TRUE(report->damage.has_value());
  EXPECT_EQ(report->damage->file, "segments/" + segs[1].filename().string());
  EXPECT_EQ(report->log_end, damaged_at);
  for (size_t k = 2; k < segs.size(); ++k) {
    EXPECT_FALSE(std::filesystem::exists(segs[k])) << segs[k];
    EXPECT_TRUE(std::filesystem::exists(report->quarantine / segs[k].filename())) << segs[k];
  }
  EXPECT_GE(FilesUnder(report->quarantine).size(), files_before - FilesUnder(dir.path() / "segments").size())
      << "every file that left the log is in the quarantine";

  auto store = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(EventsIn(**store), damaged_at.value);
  store = Status::Closed("");
  auto v = VerifyStore(dir.path());
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << (v->problems.empty() ? "" : v->problems[0].what);
}

TEST(Salvage, ASecondRunFindsNothingAndAStoreWithoutDamageIsLeftAlone) {
  TempDir dir;
  Fill(dir.path(), 20);
  const auto seg = SegmentFiles(dir.path()).back();
  auto clean = SalvageStore(dir.path());
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_FALSE(clean->damage.has_value());
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "quarantine"));

  testing::FlipByte(seg, BatchOffsets(seg)[3] + 90);
  ASSERT_TRUE(SalvageStore(dir.path()).ok());
  auto again = SalvageStore(dir.path());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->damage.has_value()) << "salvage is done once";
}

TEST(Salvage, DryRunReportsTheSameAndChangesNothing) {
  TempDir dir;
  Fill(dir.path(), 20);
  const auto seg = SegmentFiles(dir.path()).back();
  testing::FlipByte(seg, BatchOffsets(seg)[7] + 90);
  const auto before = testing::ReadFileBytes(seg);
  SalvageOptions o;
  o.dry_run = true;
  auto report = SalvageStore(dir.path(), o);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->damage.has_value());
  EXPECT_EQ(report->damage->position, 7u);
  EXPECT_EQ(testing::ReadFileBytes(seg), before);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "quarantine"));
}

TEST(Salvage, AStreamVersionGapIsDamageToo) {
  // Two batches that checksum and follow in position, but the second skips a version of
  // its stream: what a flush that failed before a roll used to leave behind (issue 9).
  TempDir dir;
  Fill(dir.path(), 4);
  const uint64_t at = testing::AppendRawBatch(SegmentFiles(dir.path()).back(), "gap", 1);  // no version 0
  auto refused = Store::Open(dir.path(), SmallOptions());
  ASSERT_EQ(refused.status().code(), Status::Code::kCorruption);
  EXPECT_NE(refused.status().message().find("stream 'gap' continues at version 1, expected 0"), std::string::npos)
      << refused.status().message();
  auto report = SalvageStore(dir.path());
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->damage.has_value());
  EXPECT_EQ(report->damage->offset, at);
  auto store = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(EventsIn(**store), 4u);
}

TEST(Salvage, IsRefusedWhileTheStoreIsOpen) {
  TempDir dir;
  Fill(dir.path(), 4);
  auto store = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(SalvageStore(dir.path()).status().code(), Status::Code::kLocked);
}


TEST(Salvage, ASealedSegmentWhoseHeaderIsDamagedGoesWithEverythingAfterIt) {
  TempDir dir;
  Fill(dir.path(), 600);
  const auto segs = SegmentFiles(dir.path());
  ASSERT_GE(segs.size(), 4u);
  const uint64_t starts_at = std::stoull(segs[2].stem().string());
  testing::FlipByte(segs[2], 20);  // inside the header: the file is not a segment any more
  auto refused = Store::Open(dir.path(), SmallOptions());
  ASSERT_EQ(refused.status().code(), Status::Code::kCorruption);
  EXPECT_NE(refused.status().message().find("esctl salvage --data-dir"), std::string::npos) << refused.status().message();
  ASSERT_TRUE(refused.status().damage().has_value());
  EXPECT_EQ(refused.status().damage()->offset, 0u);
  EXPECT_EQ(refused.status().damage()->position, starts_at);

  auto report = SalvageStore(dir.path());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_TRUE(report->damage.has_value());
  EXPECT_EQ(report->damage->file, "segments/" + segs[2].filename().string());
  EXPECT_EQ(report->log_end, GlobalPosition(starts_at));
  auto store = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(EventsIn(**store), starts_at);
  EXPECT_TRUE((*store)->AppendSync("after", ExpectedVersion::NoStream(), MakeEvents("after", 0, 1)).ok());
}

}  // namespace
}  // namespace esd::storage
