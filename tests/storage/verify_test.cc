// VerifyStore: a clean store verifies clean; damage is named by file, offset and position.
#include "storage/verify.h"

#include <gtest/gtest.h>

#include "storage/store.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvents;
using testing::SegmentFiles;
using testing::TempDir;

void Fill(const std::filesystem::path& dir, int appends) {
  auto store = Store::Open(dir, testing::SmallOptions()).value();
  for (int i = 0; i < appends; ++i) {
    const std::string s = "v-" + std::to_string(i % 3);
    ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, i / 3, 1, 0, 400)).ok());
  }
}

std::string Describe(const VerifyReport& r) {
  std::string out;
  for (const auto& p : r.problems) out += p.file + " @" + std::to_string(p.offset) + ": " + p.what + "\n";
  for (const auto& n : r.notes) out += "note: " + n + "\n";
  return out;
}

TEST(Verify, ACleanStoreVerifiesCleanAndCountsWhatItChecked) {
  TempDir dir;
  Fill(dir.path(), 400);
  uint64_t last_done = 0, last_total = 1;
  auto report = VerifyStore(dir.path(), [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done) << "progress only moves forward";
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << Describe(*report);
  EXPECT_EQ(report->events, 400u);
  EXPECT_EQ(report->batches, 400u);
  EXPECT_EQ(report->segments, SegmentFiles(dir.path()).size());
  EXPECT_EQ(report->index_files, report->segments - 1);
  EXPECT_EQ(last_done, last_total) << "progress ends at 100%";
  EXPECT_FALSE(report->torn_tail.has_value());
}

TEST(Verify, AFlippedByteIsNamedByFileOffsetAndPosition) {
  TempDir dir;
  Fill(dir.path(), 400);
  const auto seg = SegmentFiles(dir.path())[1];
  const auto offsets = testing::BatchOffsets(seg);
  testing::FlipByte(seg, offsets[3] + 100);
  auto report = VerifyStore(dir.path());
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 1u) << Describe(*report);
  const VerifyProblem& p = report->problems[0];
  EXPECT_EQ(p.file, "segments/" + seg.filename().string());
  EXPECT_EQ(p.offset, offsets[3]);
  ASSERT_TRUE(p.position.has_value());
  EXPECT_NE(p.what.find("checksum"), std::string::npos) << p.what;
}

TEST(Verify, ADamagedIndexFileIsANoteSinceOpenRebuildsIt) {
  TempDir dir;
  Fill(dir.path(), 400);
  auto idx = SegmentFiles(dir.path())[0];
  idx.replace_extension(".idx");
  testing::TruncateFile(idx, std::filesystem::file_size(idx) - 16);
  auto report = VerifyStore(dir.path());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << Describe(*report);
  ASSERT_EQ(report->notes.size(), 1u) << Describe(*report);
  EXPECT_NE(report->notes[0].find("segments/" + idx.filename().string()), std::string::npos) << report->notes[0];
  EXPECT_NE(report->notes[0].find("open rebuilds it"), std::string::npos) << report->notes[0];
}

TEST(Verify, AMissingIndexFileIsANoteSinceOpenRebuildsIt) {
  // A crash between sealing a segment and writing its index leaves it so; nothing is lost.
  TempDir dir;
  Fill(dir.path(), 400);
  auto idx = SegmentFiles(dir.path())[1];
  idx.replace_extension(".idx");
  std::filesystem::remove(idx);
  auto report = VerifyStore(dir.path());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << Describe(*report);
  ASSERT_EQ(report->notes.size(), 1u) << Describe(*report);
  EXPECT_NE(report->notes[0].find(idx.filename().string() + ": missing"), std::string::npos) << report->notes[0];
}

TEST(Verify, AMissingSegmentBreaksTheDensePositions) {
  TempDir dir;
  Fill(dir.path(), 400);
  std::filesystem::remove(SegmentFiles(dir.path())[1]);
  auto report = VerifyStore(dir.path());
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  EXPECT_NE(Describe(*report).find("missing"), std::string::npos) << Describe(*report);
}

TEST(Verify, ATornTailIsReportedButIsNoProblem) {
  TempDir dir;
  Fill(dir.path(), 10);
  const auto seg = SegmentFiles(dir.path()).back();
  const auto offsets = testing::BatchOffsets(seg);
  testing::ZeroRange(seg, offsets.back() + 70, 16);
  auto report = VerifyStore(dir.path());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << Describe(*report);
  ASSERT_TRUE(report->torn_tail.has_value());
  EXPECT_NE(report->torn_tail->find("never acknowledged"), std::string::npos);
}

TEST(Verify, ASegmentCutShortIsNamedAndLeftExactlyAsItWas) {
  TempDir dir;
  Fill(dir.path(), 400);
  const auto seg = SegmentFiles(dir.path())[1];
  const auto offsets = testing::BatchOffsets(seg);
  testing::TruncateFile(seg, offsets[3] + 50);  // a sealed segment that lost its end
  const auto before = testing::ReadFileBytes(seg);
  auto report = VerifyStore(dir.path());
  ASSERT_TRUE(report.ok());
  ASSERT_FALSE(report->ok());
  EXPECT_EQ(report->problems[0].file, "segments/" + seg.filename().string()) << Describe(*report);
  EXPECT_EQ(report->problems[0].offset, offsets[3]) << Describe(*report);
  EXPECT_EQ(testing::ReadFileBytes(seg), before) << "verify reads; it never extends or repairs";
}

TEST(Verify, ADirectoryWithoutAStoreIsNotFound) {
  TempDir dir;
  EXPECT_EQ(VerifyStore(dir.path()).status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace esd::storage
