// The index file of a sealed segment: written from a MemIndex, loaded back it answers the
// same; its tips are cumulative over earlier segments; and any damage is refused on Load.
#include "storage/index_file.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "storage/format.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::TempDir;

std::string Name(const char* prefix, int i) { return std::string(prefix).append(std::to_string(i)); }

// Builds the MemIndex of one segment from (stream, event count) batches. Stream versions
// and positions carry on from `state`, as they do from one segment to the next.
struct LogState {
  std::map<std::string, uint64_t> next_version;
  GlobalPosition position;
  TimestampMicros timestamp = 1'000'000;
};

// The size of the segment the index files here belong to: larger than any test builds.
constexpr uint64_t kSegmentBytes = 1 << 20;

struct BuiltSegment {
  MemIndex index;
  GlobalPosition first;
  GlobalPosition end;
  uint64_t end_offset = format::kSegmentHeaderSize;
};

void Build(BuiltSegment& seg, LogState& state, const std::vector<std::pair<std::string, uint32_t>>& batches,
           uint64_t record_size = 96) {
  seg.first = state.position;
  for (const auto& [stream, count] : batches) {
    std::vector<uint32_t> offsets;
    for (uint32_t i = 0; i < count; ++i) {
      offsets.push_back(static_cast<uint32_t>(seg.end_offset + format::kBatchHeaderSize + i * record_size));
    }
    const uint64_t size = format::kBatchHeaderSize + count * record_size;
    seg.index.AddBatch(stream, StreamVersion(state.next_version[stream]), state.position, ++state.timestamp,
                       seg.end_offset, size, offsets);
    state.next_version[stream] += count;
    state.position = state.position + count;
    seg.end_offset += size;
  }
  seg.end = state.position;
}

std::unique_ptr<IndexFile> WriteAndLoad(const std::filesystem::path& path, SegmentId id, const BuiltSegment& seg,
                                        const IndexFile* previous = nullptr) {
  Status s = IndexFile::Write(path, id, seg.first, seg.end, seg.end_offset, seg.index, previous);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto loaded = IndexFile::Load(path, id, seg.first, kSegmentBytes);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return loaded.ok() ? std::move(loaded).value() : nullptr;
}

void ExpectSameRun(const std::optional<StreamRun>& got, const StreamRun& want, std::string_view stream) {
  ASSERT_TRUE(got.has_value()) << stream;
  EXPECT_EQ(got->first_version, want.first_version) << stream;
  EXPECT_EQ(std::vector<uint32_t>(got->offsets.begin(), got->offsets.end()),
            std::vector<uint32_t>(want.offsets.begin(), want.offsets.end())) << stream;
  EXPECT_EQ(got->last_position, want.last_position) << stream;
  EXPECT_EQ(got->last_timestamp, want.last_timestamp) << stream;
}

TEST(IndexFile, LoadedFileAnswersLikeTheMemIndex) {
  TempDir dir;
  LogState state;
  BuiltSegment seg;
  std::vector<std::pair<std::string, uint32_t>> batches;
  for (int i = 0; i < 400; ++i) batches.push_back({Name("stream-", i % 13), 1 + i % 5});
  Build(seg, state, batches);
  ASSERT_GT(seg.index.sparse().size(), 3u);
  auto f = WriteAndLoad(dir.path() / "a.idx", SegmentId(0), seg);
  ASSERT_NE(f, nullptr);

  EXPECT_EQ(f->end_position(), seg.end);
  EXPECT_EQ(f->end_offset(), seg.end_offset);
  EXPECT_EQ(f->run_count(), 13u);
  EXPECT_EQ(f->tip_count(), 13u);
  seg.index.ForEachStream([&](std::string_view name, const StreamRun& run) {
    ExpectSameRun(f->Find(name), run, name);
    auto tip = f->Tip(name);
    ASSERT_TRUE(tip.has_value()) << name;
    EXPECT_EQ(tip->last_version, run.last_version()) << name;
    EXPECT_EQ(tip->last_position, run.last_position) << name;
    EXPECT_EQ(tip->last_timestamp, run.last_timestamp) << name;
  });
  for (uint64_t p = 0; p <= seg.end.value + 2; ++p) {
    auto want = seg.index.SparseFloor(GlobalPosition(p));
    auto got = f->SparseFloor(GlobalPosition(p));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->position, want->position) << p;
    EXPECT_EQ(got->offset, want->offset) << p;
  }
}

TEST(IndexFile, ALoadedIndexHoldsItsMappingAndNoDescriptor) {
  TempDir dir;
  LogState state;
  BuiltSegment seg;
  Build(seg, state, {{"a", 3}, {"b", 2}});
  const size_t before = OpenFileCount().value();
  auto f = WriteAndLoad(dir.path() / "a.idx", SegmentId(0), seg);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(OpenFileCount().value(), before) << "a store keeps one descriptor per segment, not two";
  ASSERT_TRUE(f->Find("a").has_value());
  EXPECT_EQ(f->Find("a")->offsets.size(), 3u) << "the mapping outlives the descriptor";
}

TEST(IndexFile, StreamsNotInTheSegmentAreNotFound) {
  TempDir dir;
  LogState state;
  BuiltSegment seg;
  Build(seg, state, {{"a", 2}, {"bb", 1}});
  auto f = WriteAndLoad(dir.path() / "a.idx", SegmentId(0), seg);
  ASSERT_NE(f, nullptr);
  for (std::string_view missing : {"", "b", "aa", "bbb", "c"}) {
    EXPECT_FALSE(f->Find(missing).has_value()) << missing;
    EXPECT_FALSE(f->Tip(missing).has_value()) << missing;
  }
}

TEST(IndexFile, EachOfAThousandStreamsIsFound) {
  TempDir dir;
  LogState state;
  BuiltSegment seg;
  std::vector<std::pair<std::string, uint32_t>> batches;
  for (int i = 0; i < 1000; ++i) batches.push_back({Name("s", i), static_cast<uint32_t>(1 + i % 4)});
  for (int i = 0; i < 1000; i += 7) batches.push_back({Name("s", i), 1});
  Build(seg, state, batches, 72);  // the smallest real record: header, 1-byte stream and type
  auto f = WriteAndLoad(dir.path() / "a.idx", SegmentId(5), seg);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->run_count(), 1000u);
  int found = 0;
  seg.index.ForEachStream([&](std::string_view name, const StreamRun& run) {
    ExpectSameRun(f->Find(name), run, name);
    ASSERT_TRUE(f->Tip(name).has_value()) << name;
    EXPECT_EQ(f->Tip(name)->last_version, run.last_version()) << name;
    ++found;
  });
  EXPECT_EQ(found, 1000);
  EXPECT_FALSE(f->Find("s1000").has_value());
}

TEST(IndexFile, TipsAreCumulativeOverEarlierSegments) {
  TempDir dir;
  LogState state;
  BuiltSegment seg0, seg1;
  Build(seg0, state, {{"only-old", 3}, {"both", 2}});
  auto f0 = WriteAndLoad(dir.path() / "0.idx", SegmentId(0), seg0);
  ASSERT_NE(f0, nullptr);
  Build(seg1, state, {{"both", 4}, {"only-new", 1}});
  auto f1 = WriteAndLoad(dir.path() / "1.idx", SegmentId(1), seg1, f0.get());
  ASSERT_NE(f1, nullptr);

  EXPECT_EQ(f1->run_count(), 2u);
  EXPECT_EQ(f1->tip_count(), 3u);
  EXPECT_FALSE(f1->Find("only-old").has_value()) << "runs are this segment's only";
  auto old_tip = f1->Tip("only-old");
  ASSERT_TRUE(old_tip.has_value());
  EXPECT_EQ(old_tip->last_version, StreamVersion(2));
  EXPECT_EQ(old_tip->last_position, GlobalPosition(2));
  EXPECT_EQ(old_tip->last_timestamp, f0->Tip("only-old")->last_timestamp);

  auto both = f1->Tip("both");
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->last_version, StreamVersion(5)) << "the newer segment's tip wins";
  EXPECT_EQ(both->last_position, GlobalPosition(8));
  EXPECT_EQ(both->last_timestamp, f1->Find("both")->last_timestamp);
  EXPECT_EQ(f1->Find("both")->first_version, StreamVersion(2));

  auto fresh = f1->Tip("only-new");
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->last_version, StreamVersion(0));
  EXPECT_EQ(fresh->last_position, GlobalPosition(9));
}

TEST(IndexFile, TipsOfManyStreamsSurviveThreeGenerations) {
  TempDir dir;
  LogState state;
  std::vector<std::unique_ptr<IndexFile>> files;
  for (uint64_t gen = 0; gen < 3; ++gen) {
    BuiltSegment seg;
    std::vector<std::pair<std::string, uint32_t>> batches;
    for (int i = 0; i < 600; ++i) {
      if (i % 3 == static_cast<int>(gen) || gen == 0) batches.push_back({Name("t", i), 1});
    }
    Build(seg, state, batches, 72);  // the smallest real record: header, 1-byte stream and type
    files.push_back(WriteAndLoad(dir.path() / Name("", static_cast<int>(gen)).append(".idx"), SegmentId(gen), seg,
                                 files.empty() ? nullptr : files.back().get()));
    ASSERT_NE(files.back(), nullptr);
  }
  const IndexFile& last = *files.back();
  EXPECT_EQ(last.tip_count(), 600u);
  for (int i = 0; i < 600; ++i) {
    const std::string name = Name("t", i);
    auto tip = last.Tip(name);
    ASSERT_TRUE(tip.has_value()) << name;
    // gen 0 wrote version 0 of every stream; gen 1 and 2 one more each to a third of them.
    const uint64_t expected = (i % 3 == 1 || i % 3 == 2) ? 1 : 0;
    EXPECT_EQ(tip->last_version, StreamVersion(expected)) << name;
  }
}

TEST(IndexFile, IndexOfAnEmptySegmentLoads) {
  TempDir dir;
  BuiltSegment seg;
  auto f = WriteAndLoad(dir.path() / "e.idx", SegmentId(0), seg);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->run_count(), 0u);
  EXPECT_FALSE(f->Find("a").has_value());
  EXPECT_FALSE(f->SparseFloor(GlobalPosition(0)).has_value());
}

class IndexFileDamage : public ::testing::Test {
 protected:
  void SetUp() override {
    LogState state;
    state.position = GlobalPosition(100);
    Build(seg_, state, {{"a", 3}, {"b", 2}, {"a", 1}});
    ASSERT_TRUE(IndexFile::Write(path_, SegmentId(4), seg_.first, seg_.end, seg_.end_offset, seg_.index,
                                 nullptr).ok());
    size_ = std::filesystem::file_size(path_);
  }
  void ExpectCorruption(SegmentId id, GlobalPosition first, const std::string& needle) {
    auto r = IndexFile::Load(path_, id, first, kSegmentBytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find(path_.string()), std::string::npos) << r.status().ToString();
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_.path() / "00000000000000000100.idx";
  BuiltSegment seg_;
  uint64_t size_ = 0;
};

TEST_F(IndexFileDamage, MissingFileIsNotFound) {
  ASSERT_TRUE(IndexFile::Load(path_, SegmentId(4), GlobalPosition(100), kSegmentBytes).ok()) << "the undamaged file loads";
  auto r = IndexFile::Load(dir_.path() / "other.idx", SegmentId(4), GlobalPosition(100), kSegmentBytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound) << r.status().ToString();
}

TEST_F(IndexFileDamage, FileOfAnotherSegmentIsRefused) {
  ExpectCorruption(SegmentId(5), GlobalPosition(100), "another segment");
  ExpectCorruption(SegmentId(4), GlobalPosition(101), "another segment");
}

TEST_F(IndexFileDamage, FlippedByteInTheBodyIsRefused) {
  for (uint64_t offset : {kIndexHeaderSize, kIndexHeaderSize + 17, size_ - 1}) {
    testing::FlipByte(path_, offset);
    ExpectCorruption(SegmentId(4), GlobalPosition(100), "body checksum");
    testing::FlipByte(path_, offset);  // flipping twice restores it
  }
}

TEST_F(IndexFileDamage, FlippedByteInTheHeaderIsRefused) {
  testing::FlipByte(path_, 0);
  ExpectCorruption(SegmentId(4), GlobalPosition(100), "bad magic");
  testing::FlipByte(path_, 0);
  for (uint64_t offset : {16u, 40u, 60u, 64u, 79u}) {
    testing::FlipByte(path_, offset);
    ExpectCorruption(SegmentId(4), GlobalPosition(100), "header checksum");
    testing::FlipByte(path_, offset);
  }
}

TEST_F(IndexFileDamage, TruncatedOrExtendedFileIsRefused) {
  testing::TruncateFile(path_, size_ + 8);
  ExpectCorruption(SegmentId(4), GlobalPosition(100), "size does not match");
  testing::TruncateFile(path_, size_ - 8);
  ExpectCorruption(SegmentId(4), GlobalPosition(100), "size does not match");
  testing::TruncateFile(path_, kIndexHeaderSize - 1);
  ExpectCorruption(SegmentId(4), GlobalPosition(100), "shorter than its header");
  testing::TruncateFile(path_, 0);
  ExpectCorruption(SegmentId(4), GlobalPosition(100), "shorter than its header");
}


// An index file is only as right as the code that wrote it: a checksum that holds does not
// make its offsets safe to follow. Each of these has valid checksums.
TEST(IndexFileBounds, OffsetsOutsideTheSegmentAreCorruptionNotUndefinedBehaviour) {
  TempDir dir;
  const auto path = dir.path() / "b.idx";
  auto refused = [&](const MemIndex& index, uint64_t end_offset, uint64_t segment_bytes, const std::string& needle) {
    ASSERT_TRUE(IndexFile::Write(path, SegmentId(0), GlobalPosition(0), GlobalPosition(3), end_offset, index, nullptr).ok());
    auto r = IndexFile::Load(path, SegmentId(0), GlobalPosition(0), segment_bytes);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  const uint32_t good[] = {format::kSegmentHeaderSize + format::kBatchHeaderSize, 200, 304};
  MemIndex ok;
  ok.AddBatch("a", StreamVersion(0), GlobalPosition(0), 1, format::kSegmentHeaderSize, 400, good);
  ASSERT_TRUE(IndexFile::Write(path, SegmentId(0), GlobalPosition(0), GlobalPosition(3), 464, ok, nullptr).ok());
  ASSERT_TRUE(IndexFile::Load(path, SegmentId(0), GlobalPosition(0), 4096).ok()) << "the well-formed one loads";

  refused(ok, 464, 400, "end offset 464 lies outside its segment");  // the segment is shorter
  const uint32_t past_end[] = {format::kSegmentHeaderSize + format::kBatchHeaderSize, 200, 4000};
  MemIndex far;
  far.AddBatch("a", StreamVersion(0), GlobalPosition(0), 1, format::kSegmentHeaderSize, 400, past_end);
  refused(far, 464, 4096, "event offset 4000");
  const uint32_t in_header[] = {8, 200, 304};
  MemIndex low;
  low.AddBatch("a", StreamVersion(0), GlobalPosition(0), 1, format::kSegmentHeaderSize, 400, in_header);
  refused(low, 464, 4096, "event offset 8");
  MemIndex sparse;  // a batch claimed past the end of the log
  sparse.AddBatch("a", StreamVersion(0), GlobalPosition(0), 1, 1000, 400, good);
  refused(sparse, 464, 4096, "sparse entry 0 out of bounds");
}

}  // namespace
}  // namespace esd::storage
