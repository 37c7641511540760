// Segment files: names, zero-filled creation, opening with header checks, the batch scanner
// and the tail analysis that tells a torn tail from corruption.
#include "storage/segment.h"

#include <fcntl.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_util.h"

namespace esd::storage {
namespace {

using testing::ReadFileBytes;
using testing::TempDir;

constexpr uint64_t kSize = 65536;

// One batch to write by hand: `count` events of `stream` from `position` on.
struct Spec {
  uint64_t position;
  uint32_t count;
  TimestampMicros timestamp;
  uint64_t version = 0;
  std::string stream = "s";
  uint64_t sync_mark = 0;
  int64_t stamp_id = -1;  // the segment id stamped into the batch; -1: the segment's own
  explicit Spec(uint64_t p, uint32_t n = 1, TimestampMicros ts = 1000) : position(p), count(n), timestamp(ts) {}
  Spec& Of(std::string st, uint64_t v) { stream = std::move(st); version = v; return *this; }
  Spec& SyncMark(uint64_t m) { sync_mark = m; return *this; }
  Spec& Stamped(int64_t id) { stamp_id = id; return *this; }
};

// Makes a segment from a spare, as the writer does, and writes batches into it by hand.
class SegmentBuilder {
 public:
  explicit SegmentBuilder(const TempDir& dir, SegmentId id = SegmentId(0), GlobalPosition first = GlobalPosition(0))
      : id_(id) {
    const auto spare = dir.path() / "spare-0.tmp";
    EXPECT_TRUE(CreateZeroFilledFile(spare, kSize).ok());
    auto seg = Segment::Activate(File::Open(spare, O_RDWR).value(), spare, dir.path(), id, first, kSize);
    EXPECT_TRUE(seg.ok()) << seg.status().ToString();
    segment_ = std::move(seg).value();
  }

  // Writes the batch at the next offset and returns that offset.
  uint64_t Write(const Spec& spec) {
    // The fields fill whole 8-byte words, so the last word of every batch is not zero.
    const size_t data_size = 8 + (8 - (spec.stream.size() + 1) % 8) % 8;
    const std::string data(data_size, 'd');
    std::vector<format::EventFields> events;
    size_t size = format::kBatchHeaderSize;
    for (uint32_t i = 0; i < spec.count; ++i) {
      events.push_back({EventId::Random(), "T", "", "", data});
      size += format::EventRecordSize(spec.stream, events.back());
    }
    std::vector<uint8_t> bytes(size);
    const uint64_t stamp = spec.stamp_id < 0 ? id_.value : static_cast<uint64_t>(spec.stamp_id);
    format::EncodeBatch(bytes, spec.stream, events, {SegmentId(stamp), GlobalPosition(spec.position),
                        StreamVersion(spec.version), spec.timestamp, FileOffset(spec.sync_mark)});
    const uint64_t at = next_;
    EXPECT_TRUE(segment_->file().WriteAt(at, bytes).ok());
    next_ += size;
    return at;
  }

  uint64_t next_offset() const { return next_; }
  const std::filesystem::path& path() const { return segment_->path(); }
  std::unique_ptr<Segment> Reopen() const {
    auto seg = Segment::Open(path());
    EXPECT_TRUE(seg.ok()) << seg.status().ToString();
    return seg.ok() ? std::move(seg).value() : nullptr;
  }

 private:
  SegmentId id_;
  std::unique_ptr<Segment> segment_;
  uint64_t next_ = format::kSegmentHeaderSize;
};

// What the scanner reported, copied: event offsets are only valid during the callback.
struct Seen {
  uint64_t offset;
  std::string stream;
  StreamVersion first_version;
  uint64_t first_position;
  std::vector<uint32_t> event_offsets;
};

ScanResult Scan(const Segment& seg, std::vector<Seen>* seen = nullptr, GlobalPosition first = GlobalPosition(0),
                TimestampMicros min_ts = 0, uint64_t from = format::kSegmentHeaderSize) {
  return ScanSegment(seg, from, first, min_ts, [&](const ScannedBatch& b) {
    if (seen != nullptr) {
      seen->push_back({b.offset, std::string(b.stream), b.first_version, b.header.first_position,
                       std::vector<uint32_t>(b.event_offsets.begin(), b.event_offsets.end())});
    }
  });
}

TEST(SegmentPath, NamesAreTheFirstPositionIn20ZeroPaddedDigits) {
  const std::filesystem::path dir = "/data/segments";
  EXPECT_EQ(SegmentPath(dir, GlobalPosition(0)), dir / "00000000000000000000.seg");
  EXPECT_EQ(SegmentPath(dir, GlobalPosition(1234)), dir / "00000000000000001234.seg");
  EXPECT_EQ(IndexPath(dir, GlobalPosition(1234)), dir / "00000000000000001234.idx");
  EXPECT_EQ(SegmentPath(dir, GlobalPosition(~uint64_t{0})), dir / "18446744073709551615.seg");
  EXPECT_LT(SegmentPath(dir, GlobalPosition(999)), SegmentPath(dir, GlobalPosition(1000))) << "names sort in log order";
}

TEST(CreateZeroFilledFile, MakesAFileOfZerosReplacingAnyContent) {
  TempDir dir;
  const auto path = dir.path() / "f";
  ASSERT_TRUE(WriteFileAtomically(path, std::vector<uint8_t>(100000, 0xee)).ok());
  ASSERT_TRUE(CreateZeroFilledFile(path, kSize).ok());
  const auto bytes = ReadFileBytes(path);
  ASSERT_EQ(bytes.size(), kSize);
  EXPECT_EQ(std::count(bytes.begin(), bytes.end(), 0), static_cast<long>(kSize));
  EXPECT_FALSE(CreateZeroFilledFile(dir.path() / "missing" / "f", kSize).ok());
}

TEST(Segment, ActivateRenamesTheSpareAndOpenReadsTheHeaderBack) {
  TempDir dir;
  SegmentBuilder b(dir, SegmentId(3), GlobalPosition(700));
  EXPECT_EQ(b.path(), SegmentPath(dir.path(), GlobalPosition(700)));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "spare-0.tmp"));
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  EXPECT_EQ(seg->id(), SegmentId(3));
  EXPECT_EQ(seg->first_position(), GlobalPosition(700));
  EXPECT_EQ(seg->size(), kSize);
}

TEST(Segment, OpenRejectsABadHeaderAsCorruption) {
  TempDir dir;
  SegmentBuilder b(dir);
  for (const auto& [offset, why] : std::vector<std::pair<uint64_t, std::string>>{
           {0, "not a segment file"}, {16, "checksum mismatch"}, {60, "checksum mismatch"}}) {
    testing::FlipByte(b.path(), offset);
    auto seg = Segment::Open(b.path());
    ASSERT_FALSE(seg.ok()) << offset;
    EXPECT_EQ(seg.status().code(), Status::Code::kCorruption) << seg.status().ToString();
    EXPECT_NE(seg.status().message().find(why), std::string::npos) << seg.status().ToString();
    EXPECT_NE(seg.status().message().find(b.path().string()), std::string::npos) << seg.status().ToString();
    testing::FlipByte(b.path(), offset);
  }
  testing::TruncateFile(b.path(), 40);  // not even a whole header
  EXPECT_EQ(Segment::Open(b.path()).status().code(), Status::Code::kCorruption);
  ASSERT_TRUE(CreateZeroFilledFile(dir.path() / "zeros.seg", kSize).ok());
  EXPECT_EQ(Segment::Open(dir.path() / "zeros.seg").status().code(), Status::Code::kCorruption);
}

TEST(Segment, ShortFileIsMappedAsItIsUntilExtendedWithZeros) {
  TempDir dir;
  SegmentBuilder b(dir);
  b.Write(Spec(0, 2));
  testing::TruncateFile(b.path(), 4096);
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  EXPECT_EQ(std::filesystem::file_size(b.path()), 4096u) << "opening writes nothing";
  EXPECT_TRUE(seg->is_short());
  EXPECT_EQ(seg->size(), 4096u);
  ASSERT_TRUE(seg->ExtendToDeclaredSize().ok());
  EXPECT_EQ(std::filesystem::file_size(b.path()), kSize);
  ASSERT_EQ(seg->size(), kSize);
  EXPECT_NE(seg->bytes()[b.next_offset() - 1], 0) << "bytes before the cut are kept";
  EXPECT_EQ(std::count(seg->bytes().begin() + 4096, seg->bytes().end(), 0), static_cast<long>(kSize - 4096));
  EXPECT_TRUE(Scan(*seg).clean);
}

TEST(Segment, OpenReadOnlyLeavesAShortFileAsItIsAndMapsWhatItHas) {
  TempDir dir;
  SegmentBuilder b(dir);
  b.Write(Spec(0, 2));
  const uint64_t end = b.next_offset();
  b.Write(Spec(2, 1));
  testing::TruncateFile(b.path(), b.next_offset() - 8);  // the last batch cut short
  const auto before = ReadFileBytes(b.path());
  auto seg = Segment::OpenReadOnly(b.path());
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_EQ((*seg)->size(), before.size());
  const ScanResult r = Scan(**seg);
  EXPECT_FALSE(r.clean) << "the cut batch is seen as such";
  EXPECT_EQ(r.end_offset, end);
  EXPECT_EQ(ReadFileBytes(b.path()), before) << "nothing written";
}

TEST(ScanSegment, ReportsBatchesInOrderAndStopsCleanAtZeros) {
  TempDir dir;
  SegmentBuilder b(dir, SegmentId(2), GlobalPosition(10));
  const std::vector<uint64_t> at = {b.Write(Spec(10, 2, 5).Of("a", 0)), b.Write(Spec(12, 1, 5).Of("bb", 7)),
                                     b.Write(Spec(13, 3, 9).Of("a", 2))};
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  std::vector<Seen> seen;
  const ScanResult r = Scan(*seg, &seen, GlobalPosition(10));
  EXPECT_TRUE(r.clean) << r.problem;
  EXPECT_EQ(r.end_offset, b.next_offset());
  EXPECT_EQ(r.end_position, GlobalPosition(16));
  EXPECT_EQ(r.last_timestamp, 9u);
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(seen[i].offset, at[i]) << i;
  EXPECT_EQ(seen[1].stream, "bb");
  EXPECT_EQ(seen[1].first_version, StreamVersion(7));
  EXPECT_EQ(seen[2].first_position, 13u);
  ASSERT_EQ(seen[2].event_offsets.size(), 3u);
  EXPECT_EQ(seen[2].event_offsets[0], at[2] + format::kBatchHeaderSize);
  format::EventView ev;
  uint32_t size = 0;  // the offsets point at the event records
  ASSERT_TRUE(format::ParseEvent(seg->bytes().subspan(seen[2].event_offsets[2]), &ev, &size));
  EXPECT_EQ(ev.position, GlobalPosition(15));
}

TEST(ScanSegment, EmptySegmentIsCleanAndAScanMayStartMidway) {
  TempDir dir;
  SegmentBuilder b(dir, SegmentId(0), GlobalPosition(50));
  {
    auto empty = b.Reopen();
    ASSERT_NE(empty, nullptr);
    const ScanResult r = Scan(*empty, nullptr, GlobalPosition(50), 77);
    EXPECT_TRUE(r.clean);
    EXPECT_EQ(r.end_offset, format::kSegmentHeaderSize);
    EXPECT_EQ(r.end_position, GlobalPosition(50));
    EXPECT_EQ(r.last_timestamp, 77u);
  }
  b.Write(Spec(50, 2));
  const uint64_t second = b.Write(Spec(52));
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  std::vector<Seen> seen;
  const ScanResult r = Scan(*seg, &seen, GlobalPosition(52), 1000, second);
  EXPECT_TRUE(r.clean) << r.problem;
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].offset, second);
  EXPECT_EQ(r.end_position, GlobalPosition(53));
}

// Writes a good batch of 3 events, `bad`, then another; the scan must stop at `bad`.
void ExpectScanStopsAt(const Spec& bad, const std::string& why) {
  TempDir dir;
  SegmentBuilder b(dir, SegmentId(1), GlobalPosition(0));
  b.Write(Spec(0, 3, 100));
  const uint64_t bad_offset = b.Write(bad);
  b.Write(Spec(3 + bad.count, 1, 200));
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  std::vector<Seen> seen;
  const ScanResult r = Scan(*seg, &seen);
  EXPECT_FALSE(r.clean);
  EXPECT_NE(r.problem.find(why), std::string::npos) << r.problem;
  EXPECT_EQ(r.end_offset, bad_offset);
  EXPECT_EQ(r.end_position, GlobalPosition(3));
  EXPECT_EQ(r.last_timestamp, 100u);
  EXPECT_EQ(seen.size(), 1u) << "only the batch before the bad one";
}

TEST(ScanSegment, BatchStampedWithAnotherSegmentIdIsAProblem) {
  ExpectScanStopsAt(Spec(3, 1, 100).Stamped(7), "segment id 7");
}

TEST(ScanSegment, GapInPositionsIsAProblem) {
  ExpectScanStopsAt(Spec(5, 1, 100), "starts at position 5, expected 3");
}

TEST(ScanSegment, TimestampGoingBackwardsIsAProblem) {
  ExpectScanStopsAt(Spec(3, 1, 99), "timestamp goes backwards");
  TempDir dir;  // the first batch is checked against the timestamp the scan starts from
  SegmentBuilder b(dir);
  b.Write(Spec(0, 1, 500));
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  EXPECT_TRUE(Scan(*seg, nullptr, GlobalPosition(0), 500).clean);
  EXPECT_EQ(Scan(*seg, nullptr, GlobalPosition(0), 501).problem, "timestamp goes backwards");
}

TEST(ScanSegment, FlippedByteIsAChecksumProblemAtItsBatch) {
  TempDir dir;
  SegmentBuilder b(dir);
  b.Write(Spec(0, 2));
  const uint64_t bad = b.Write(Spec(2));
  testing::FlipByte(b.path(), bad + format::kBatchHeaderSize + 70);
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  const ScanResult r = Scan(*seg);
  EXPECT_FALSE(r.clean);
  EXPECT_EQ(r.problem, "checksum mismatch");
  EXPECT_EQ(r.end_offset, bad);
  EXPECT_EQ(r.end_position, GlobalPosition(2));
}

// A good batch, a damaged one, and (unless nullopt) a later intact batch whose sync_mark is
// `sync_delta` bytes past the damaged one's offset (damaged too if `later_damaged`).
void ExpectTail(std::optional<int64_t> sync_delta, bool vouched, bool later_damaged = false) {
  TempDir dir;
  SegmentBuilder b(dir);
  b.Write(Spec(0, 2));
  const uint64_t bad = b.Write(Spec(2).SyncMark(format::kSegmentHeaderSize));
  const uint64_t later = sync_delta ? b.Write(Spec(3).SyncMark(bad + *sync_delta)) : 0;
  testing::FlipByte(b.path(), bad + format::kBatchHeaderSize + 3);
  if (later_damaged) testing::FlipByte(b.path(), later + format::kBatchHeaderSize + 3);
  auto seg = b.Reopen();
  ASSERT_NE(seg, nullptr);
  ASSERT_FALSE(Scan(*seg).clean);
  const TailAnalysis t = AnalyzeTail(*seg, bad);
  EXPECT_EQ(t.vouched_for, vouched) << (sync_delta ? std::to_string(*sync_delta) : "no later batch");
  EXPECT_EQ(t.nonzero_end, b.next_offset());
}

TEST(AnalyzeTail, LaterBatchWhoseSyncMarkIsPastTheBadOffsetVouchesForIt) {
  ExpectTail(8, true);
  ExpectTail(64, true);
}

TEST(AnalyzeTail, SyncMarkAtOrBeforeTheBadOffsetDoesNotVouch) {
  ExpectTail(0, false);
  ExpectTail(-8, false);
  ExpectTail(-static_cast<int64_t>(format::kBatchHeaderSize), false);
}

TEST(AnalyzeTail, NothingAfterTheBadBatchIsATornTail) { ExpectTail(std::nullopt, false); }

TEST(AnalyzeTail, OnlyAnIntactLaterBatchCanVouch) { ExpectTail(8, false, /*later_damaged=*/true); }

}  // namespace
}  // namespace esd::storage
