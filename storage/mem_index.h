// The in-memory index of one segment: for each stream, where its events are; and a sparse
// $all table from position to batch offset. The writer builds it for the active segment as
// batches become durable; recovery builds it by scanning a segment. Once a segment is
// sealed it is frozen, and replaced by the segment's IndexFile when that has been written.
//
// Not synchronised: the Store guards the active segment's MemIndex with its shared_mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/sharded_map.h"  // also StringHash
#include "storage/types.h"

namespace esd::storage {

// A stream's events in one segment: versions first_version .. first_version + size - 1
// (versions of a stream are dense, so a segment holds one contiguous run of them).
struct StreamRun {
  StreamVersion first_version;
  std::span<const uint32_t> offsets;  // segment offset of each event record
  GlobalPosition last_position;
  TimestampMicros last_timestamp = 0;

  StreamVersion last_version() const { return first_version + (offsets.size() - 1); }
};

// A stream's state as of the end of a segment (cumulative over all earlier segments).
struct StreamTip {
  StreamVersion last_version;
  GlobalPosition last_position;
  TimestampMicros last_timestamp = 0;
};

struct SparseEntry {
  uint64_t position;  // first position of a batch
  uint64_t offset;    // its offset in the segment
};

// Batches that start at least this many events or bytes after the previous sparse entry get
// an entry of their own, so a $all read skips at most this much before its first event.
inline constexpr uint64_t kSparseEveryEvents = 64;
inline constexpr uint64_t kSparseEveryBytes = 16 * 1024;

class MemIndex {
 public:
  // Records a batch of `event_offsets.size()` events of `stream`. Offsets are segment
  // offsets of the event records; batches must come in log order.
  void AddBatch(std::string_view stream, StreamVersion first_version, GlobalPosition first_position,
                TimestampMicros timestamp, uint64_t batch_offset, uint64_t batch_size,
                std::span<const uint32_t> event_offsets);

  std::optional<StreamRun> Find(std::string_view stream) const;
  // Offset of the last batch that starts at or before `position` (the first batch if none).
  std::optional<SparseEntry> SparseFloor(GlobalPosition position) const;

  template <typename F>  // f(std::string_view stream, const StreamRun&)
  void ForEachStream(F&& f) const {
    runs_.ForEach([&](const std::string& name, const Run& run) { f(std::string_view(name), ToRun(run)); });
  }
  const std::vector<SparseEntry>& sparse() const { return sparse_; }
  size_t stream_count() const { return runs_.size(); }
  uint64_t event_count() const { return events_; }

 private:
  struct Run {
    StreamVersion first_version;
    std::vector<uint32_t> offsets;
    GlobalPosition last_position;
    TimestampMicros last_timestamp = 0;
  };
  static StreamRun ToRun(const Run& r) {
    return {r.first_version, r.offsets, r.last_position, r.last_timestamp};
  }

  // Grown under the Store's exclusive lock: sharded so that no one rehash moves them all.
  ShardedStringMap<Run> runs_;
  std::vector<SparseEntry> sparse_;
  uint64_t events_ = 0;
  uint64_t events_since_sparse_ = 0;
  uint64_t last_sparse_offset_ = 0;
};

}  // namespace esd::storage
