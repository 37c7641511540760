// VerifyStore: a clean store verifies clean; damage is named by file, offset and position.
#include "storage/verify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

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

TEST(Verify, ProgressCountsTheLogCheckedNotThePreallocatedZerosAfterIt) {
  TempDir dir;
  Fill(dir.path(), 3);  // a few batches at the start of a 64 KiB segment: mostly zeros
  uint64_t max_done = 0, last_done = 0, last_total = 0;
  auto report = VerifyStore(dir.path(), [&](uint64_t done, uint64_t total) {
    EXPECT_LE(done, total);
    max_done = std::max(max_done, done);
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(report.ok());
  ASSERT_LT(report->bytes, testing::SmallOptions().segment_size / 4);
  EXPECT_EQ(max_done, report->bytes) << "never more than the log checked";
  EXPECT_EQ(last_done, report->bytes);
  EXPECT_EQ(last_total, report->bytes) << "the total shrinks to the log once the zeros are known";
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


// ---- Verify is exactly as strict as open ----
// Open refuses: verify reports damage. Open repairs silently: verify reports a note in the
// same words, and no problem. A clean store: neither.
struct Kind {
  const char* name;
  std::function<void(const std::filesystem::path& dir)> damage;
  bool open_refuses;
  bool open_repairs;  // a note on both sides
};

std::filesystem::path Idx(std::filesystem::path seg) { return seg.replace_extension(".idx"); }

TEST(VerifyAgreesWithOpen, OnEveryKindOfStoreBothToolsJudgeAlike) {
  using testing::BatchOffsets;
  const std::vector<Kind> kinds = {
      {"clean", [](const auto&) {}, false, false},
      {"torn tail", [](const auto& d) {
         const auto seg = SegmentFiles(d).back();
         testing::FlipByte(seg, BatchOffsets(seg).back() + 70);
       }, false, true},
      {"missing index", [](const auto& d) { std::filesystem::remove(Idx(SegmentFiles(d)[1])); }, false, true},
      {"damaged index", [](const auto& d) { testing::FlipByte(Idx(SegmentFiles(d)[0]), 100); }, false, true},
      {"acknowledged batch damaged in the active segment", [](const auto& d) {
         const auto seg = SegmentFiles(d).back();
         testing::FlipByte(seg, BatchOffsets(seg)[1] + 70);
       }, true, false},
      {"active segment cut inside a batch", [](const auto& d) {
         const auto seg = SegmentFiles(d).back();
         testing::TruncateFile(seg, BatchOffsets(seg).back() + 20);
       }, true, false},
      {"a stream skips a version", [](const auto& d) { testing::AppendRawBatch(SegmentFiles(d).back(), "v-0", 500); },
       true, false},
      {"a stream repeats a version", [](const auto& d) { testing::AppendRawBatch(SegmentFiles(d).back(), "v-1", 0); },
       true, false},
      {"a segment is missing", [](const auto& d) { std::filesystem::remove(SegmentFiles(d)[1]); }, true, false},
      {"a sealed segment is damaged and its index must be rebuilt", [](const auto& d) {
         const auto seg = SegmentFiles(d)[1];
         testing::FlipByte(seg, BatchOffsets(seg)[3] + 70);
         std::filesystem::remove(Idx(seg));
       }, true, false},
      {"a file in segments/ that is not a segment", [](const auto& d) {
         std::filesystem::copy_file(SegmentFiles(d)[0], d / "segments" / "copy.seg");
       }, true, false},
      {"an unfinished backup", [](const auto& d) { ASSERT_TRUE(MarkBackupInProgress(d).ok()); }, true, false},
  };
  for (const Kind& kind : kinds) {
    SCOPED_TRACE(kind.name);
    TempDir dir;
    Fill(dir.path(), 400);
    kind.damage(dir.path());
    auto verified = VerifyStore(dir.path());
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    auto opened = Store::Open(dir.path(), testing::SmallOptions());
    EXPECT_EQ(!opened.ok(), kind.open_refuses) << opened.status().ToString();
    EXPECT_EQ(!verified->ok(), kind.open_refuses) << Describe(*verified);
    EXPECT_EQ(!verified->notes.empty(), kind.open_repairs) << Describe(*verified);
    if (opened.ok()) {
      EXPECT_EQ((*opened)->recovery().notes, verified->notes) << "the same words on both sides";
    }
  }
}

TEST(VerifyAgreesWithOpen, DamageInASealedSegmentOpenDoesNotReadIsDamageThatReadsRefuse) {
  // Open reads only the active segment and the index files, so it takes this store; verify
  // reads everything and names the damage, and so does any read that reaches it.
  TempDir dir;
  Fill(dir.path(), 400);
  const auto seg = SegmentFiles(dir.path())[1];
  const uint64_t at = testing::BatchOffsets(seg)[3];
  testing::FlipByte(seg, at + 70);
  auto verified = VerifyStore(dir.path());
  ASSERT_TRUE(verified.ok());
  ASSERT_EQ(verified->problems.size(), 1u) << Describe(*verified);
  EXPECT_EQ(verified->problems[0].offset, at);
  auto store = Store::Open(dir.path(), testing::SmallOptions());
  ASSERT_TRUE(store.ok());
  auto all = (*store)->ReadAll(GlobalPosition(0), 100'000);
  ASSERT_EQ(all.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(all.status().damage()->offset, at);
  EXPECT_EQ(all.status().damage()->position, verified->problems[0].position);
}

}  // namespace
}  // namespace esd::storage
