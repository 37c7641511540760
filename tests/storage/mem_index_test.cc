// The in-memory index of one segment: per-stream runs of dense versions, and the sparse
// $all table from position to batch offset.
#include "storage/mem_index.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "storage/format.h"

namespace esd::storage {
namespace {

constexpr uint64_t kRecord = 128;  // bytes per event record in these made-up batches

// Feeds a MemIndex batches laid out back to back like the writer would.
class Feeder {
 public:
  explicit Feeder(MemIndex& index) : index_(index) {}

  // Appends `count` events of `stream`; returns the batch offset.
  uint64_t Add(const std::string& stream, uint32_t count, TimestampMicros ts = 1000) {
    std::vector<uint32_t> offsets;
    for (uint32_t i = 0; i < count; ++i) {
      offsets.push_back(static_cast<uint32_t>(offset_ + format::kBatchHeaderSize + i * kRecord));
    }
    const uint64_t batch_offset = offset_;
    const uint64_t size = format::kBatchHeaderSize + count * kRecord;
    index_.AddBatch(stream, StreamVersion(next_version_[stream]), position_, ts, batch_offset, size, offsets);
    next_version_[stream] += count;
    position_ = position_ + count;
    offset_ += size;
    return batch_offset;
  }
  void SkipBytes(uint64_t n) { offset_ += n; }
  void StartStreamAt(const std::string& stream, uint64_t version) { next_version_[stream] = version; }
  GlobalPosition position() const { return position_; }

 private:
  MemIndex& index_;
  uint64_t offset_ = format::kSegmentHeaderSize;
  GlobalPosition position_;
  std::map<std::string, uint64_t> next_version_;
};

TEST(MemIndex, EmptyIndexFindsNothing) {
  MemIndex index;
  EXPECT_FALSE(index.Find("a").has_value());
  EXPECT_FALSE(index.SparseFloor(GlobalPosition(0)).has_value());
  EXPECT_EQ(index.stream_count(), 0u);
  EXPECT_EQ(index.event_count(), 0u);
}

TEST(MemIndex, FindReturnsTheRunOfOneBatch) {
  MemIndex index;
  const std::vector<uint32_t> offsets = {120, 200, 264};
  index.AddBatch("order-1", StreamVersion(0), GlobalPosition(0), 5555, 64, 300, offsets);
  auto run = index.Find("order-1");
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->first_version, StreamVersion(0));
  EXPECT_EQ(run->last_version(), StreamVersion(2));
  EXPECT_EQ(std::vector<uint32_t>(run->offsets.begin(), run->offsets.end()), offsets);
  EXPECT_EQ(run->last_position, GlobalPosition(2));
  EXPECT_EQ(run->last_timestamp, 5555u);
  EXPECT_FALSE(index.Find("order-2").has_value());
  EXPECT_FALSE(index.Find("order-").has_value());
}

TEST(MemIndex, BatchesOfOneStreamExtendItsRunAcrossOtherStreams) {
  MemIndex index;
  Feeder feed(index);
  const uint64_t a0 = feed.Add("a", 2, 10);
  feed.Add("b", 1, 11);
  const uint64_t a1 = feed.Add("a", 3, 12);
  feed.Add("b", 1, 13);

  auto a = index.Find("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first_version, StreamVersion(0));
  EXPECT_EQ(a->last_version(), StreamVersion(4));
  ASSERT_EQ(a->offsets.size(), 5u);
  EXPECT_EQ(a->offsets[0], a0 + format::kBatchHeaderSize);
  EXPECT_EQ(a->offsets[2], a1 + format::kBatchHeaderSize);
  EXPECT_EQ(a->offsets[4], a1 + format::kBatchHeaderSize + 2 * kRecord);
  EXPECT_EQ(a->last_position, GlobalPosition(5));  // positions 0 1 | 2 | 3 4 5 | 6
  EXPECT_EQ(a->last_timestamp, 12u);

  auto b = index.Find("b");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->last_version(), StreamVersion(1));
  EXPECT_EQ(b->last_position, GlobalPosition(6));
  EXPECT_EQ(b->last_timestamp, 13u);

  EXPECT_EQ(index.stream_count(), 2u);
  EXPECT_EQ(index.event_count(), 7u);
}

TEST(MemIndex, RunOfAStreamContinuedFromAnEarlierSegmentStartsAtItsVersion) {
  MemIndex index;
  Feeder feed(index);
  feed.StartStreamAt("old", 41);
  feed.Add("old", 2);
  feed.Add("old", 1);
  auto run = index.Find("old");
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->first_version, StreamVersion(41));
  EXPECT_EQ(run->last_version(), StreamVersion(43));
  EXPECT_EQ(run->offsets.size(), 3u);
}

TEST(MemIndex, ForEachStreamVisitsEveryStreamOnce) {
  MemIndex index;
  Feeder feed(index);
  for (int i = 0; i < 30; ++i) feed.Add("s-" + std::to_string(i % 7), 1 + i % 3);
  std::map<std::string, uint64_t> seen;
  index.ForEachStream([&](std::string_view name, const StreamRun& run) {
    seen[std::string(name)] += run.offsets.size();
  });
  EXPECT_EQ(seen.size(), 7u);
  uint64_t total = 0;
  for (const auto& [name, count] : seen) total += count;
  EXPECT_EQ(total, index.event_count());
}

TEST(MemIndex, FirstBatchAlwaysHasASparseEntry) {
  MemIndex index;
  index.AddBatch("a", StreamVersion(0), GlobalPosition(100), 1, 64, 184, std::vector<uint32_t>{120});
  ASSERT_EQ(index.sparse().size(), 1u);
  EXPECT_EQ(index.sparse()[0].position, 100u);
  EXPECT_EQ(index.sparse()[0].offset, 64u);
}

TEST(MemIndex, SparseEntryEveryKSparseEveryEventsEvents) {
  MemIndex index;
  Feeder feed(index);
  // 64 one-event batches take less than kSparseEveryBytes, so only the event count counts.
  ASSERT_LT(kSparseEveryEvents * (format::kBatchHeaderSize + kRecord), kSparseEveryBytes);
  for (uint64_t i = 0; i < 3 * kSparseEveryEvents + 1; ++i) feed.Add("a", 1);
  std::vector<uint64_t> positions;
  for (const SparseEntry& e : index.sparse()) positions.push_back(e.position);
  EXPECT_EQ(positions, (std::vector<uint64_t>{0, kSparseEveryEvents, 2 * kSparseEveryEvents,
                                              3 * kSparseEveryEvents}));
}

TEST(MemIndex, BigBatchMakesTheNextBatchASparseEntry) {
  MemIndex index;
  Feeder feed(index);
  feed.Add("a", 1);
  feed.Add("a", kSparseEveryEvents - 2);
  const uint64_t third = feed.Add("b", 1);  // starts 63 events after the entry: not yet
  EXPECT_EQ(index.sparse().size(), 1u);
  feed.Add("b", 1);  // starts 64 events after the entry
  ASSERT_EQ(index.sparse().size(), 2u);
  EXPECT_EQ(index.sparse()[1].position, kSparseEveryEvents);
  EXPECT_GT(index.sparse()[1].offset, third);
}

TEST(MemIndex, SparseEntryEveryKSparseEveryBytesBytes) {
  MemIndex index;
  Feeder feed(index);
  const uint64_t first = feed.Add("a", 1);
  feed.SkipBytes(kSparseEveryBytes - (format::kBatchHeaderSize + kRecord) - 8);
  feed.Add("a", 1);  // 8 bytes short of the distance
  EXPECT_EQ(index.sparse().size(), 1u);
  feed.SkipBytes(kSparseEveryBytes);
  const uint64_t far = feed.Add("a", 1);
  ASSERT_EQ(index.sparse().size(), 2u);
  EXPECT_EQ(index.sparse()[1].offset, far);
  EXPECT_EQ(index.sparse()[1].position, 2u);
  EXPECT_GE(far, first + kSparseEveryBytes);
}

TEST(MemIndex, SparseEntryAtExactlyKSparseEveryBytes) {
  MemIndex index;
  Feeder feed(index);
  const uint64_t first = feed.Add("a", 1);
  feed.SkipBytes(kSparseEveryBytes - (format::kBatchHeaderSize + kRecord));
  const uint64_t second = feed.Add("a", 1);
  ASSERT_EQ(second, first + kSparseEveryBytes);
  ASSERT_EQ(index.sparse().size(), 2u);
  EXPECT_EQ(index.sparse()[1].offset, second);
}

TEST(MemIndex, SparseFloorPicksTheLastEntryAtOrBeforeAPosition) {
  MemIndex index;
  // Every batch is 16 KiB after the one before, so each has an entry: positions 10, 13, 15.
  index.AddBatch("x", StreamVersion(0), GlobalPosition(10), 1, 64, 100, std::vector<uint32_t>{0, 0, 0});
  index.AddBatch("x", StreamVersion(3), GlobalPosition(13), 1, 64 + kSparseEveryBytes, 100,
                 std::vector<uint32_t>{0, 0});
  index.AddBatch("x", StreamVersion(5), GlobalPosition(15), 1, 64 + 2 * kSparseEveryBytes, 100,
                 std::vector<uint32_t>{0});
  ASSERT_EQ(index.sparse().size(), 3u);
  auto offset_at = [&](uint64_t p) { return index.SparseFloor(GlobalPosition(p))->offset; };
  EXPECT_EQ(offset_at(10), 64u);
  EXPECT_EQ(offset_at(12), 64u);
  EXPECT_EQ(offset_at(13), 64 + kSparseEveryBytes);
  EXPECT_EQ(offset_at(14), 64 + kSparseEveryBytes);
  EXPECT_EQ(offset_at(15), 64 + 2 * kSparseEveryBytes);
  EXPECT_EQ(offset_at(1'000'000), 64 + 2 * kSparseEveryBytes);
  EXPECT_EQ(index.SparseFloor(GlobalPosition(14))->position, 13u);
}

TEST(MemIndex, SparseFloorBeforeTheFirstEntryIsTheFirstEntry) {
  MemIndex index;
  index.AddBatch("x", StreamVersion(0), GlobalPosition(500), 1, 64, 100, std::vector<uint32_t>{120});
  index.AddBatch("x", StreamVersion(1), GlobalPosition(501), 1, 64 + kSparseEveryBytes, 100,
                 std::vector<uint32_t>{0});
  auto floor = index.SparseFloor(GlobalPosition(3));
  ASSERT_TRUE(floor.has_value());
  EXPECT_EQ(floor->position, 500u);
  EXPECT_EQ(floor->offset, 64u);
}

}  // namespace
}  // namespace esd::storage
