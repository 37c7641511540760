#include "storage/mem_index.h"

#include <algorithm>
#include <cassert>

namespace esd::storage {

void MemIndex::AddBatch(std::string_view stream, StreamVersion first_version,
                        GlobalPosition first_position, TimestampMicros timestamp,
                        uint64_t batch_offset, uint64_t batch_size,
                        std::span<const uint32_t> event_offsets) {
  assert(!event_offsets.empty());
  Run& run = runs_.TryEmplace(stream, Run{first_version, {}, {}, 0}).first->second;
  // Invariant: a stream's versions are dense within a segment. The writer assigns them so;
  // what comes from disk has passed the version judge of recovery or verify first (a batch
  // that does not continue its stream is damage there), so this cannot fail on bad input.
  assert(run.first_version + run.offsets.size() == first_version);
  run.offsets.insert(run.offsets.end(), event_offsets.begin(), event_offsets.end());
  run.last_position = first_position + (event_offsets.size() - 1);
  run.last_timestamp = timestamp;

  if (sparse_.empty() || events_since_sparse_ >= kSparseEveryEvents ||
      batch_offset >= last_sparse_offset_ + kSparseEveryBytes) {
    sparse_.push_back({first_position.value, batch_offset});
    events_since_sparse_ = 0;
    last_sparse_offset_ = batch_offset;
  }
  events_since_sparse_ += event_offsets.size();
  events_ += event_offsets.size();
  (void)batch_size;
}

std::optional<StreamRun> MemIndex::Find(std::string_view stream) const {
  const Run* run = runs_.Find(stream);
  if (run == nullptr) return std::nullopt;
  return ToRun(*run);
}

std::optional<SparseEntry> MemIndex::SparseFloor(GlobalPosition position) const {
  if (sparse_.empty()) return std::nullopt;
  auto it = std::upper_bound(sparse_.begin(), sparse_.end(), position.value,
                             [](uint64_t p, const SparseEntry& e) { return p < e.position; });
  return it == sparse_.begin() ? sparse_.front() : *(it - 1);
}

}  // namespace esd::storage
