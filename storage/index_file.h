// The index file of a sealed segment, DATA/segments/<first-position>.idx. Written once when
// the segment is sealed (tmp + fdatasync + rename + fsync(dir)), never changed, checksummed,
// and rebuilt from the .seg file when it is missing or damaged.
//
//   +--------------+---------------------+-------------+----------------------+---------+-------+
//   | IndexHeader  | RunEntry[runs]      | u32 offsets | TipEntry[tips]       | Sparse  | names |
//   | 80 bytes     | sorted (hash, name) | (pad to 8)  | sorted (hash, name)  | [n]     |       |
//   +--------------+---------------------+-------------+----------------------+---------+-------+
//
// IndexHeader (80 bytes)
//   +0  u64 magic "ESDIDX01"   +8 u32 format_version   +12 u32 header_size (80)
//   +16 u64 segment_id         +24 u64 first_position  +32 u64 end_position (exclusive)
//   +40 u32 end_offset (first unused byte of the segment)  +44 u32 run_count
//   +48 u32 offset_count       +52 u32 tip_count       +56 u32 sparse_count  +60 u32 names_size
//   +64 u64 body_checksum  XXH3-64 of every byte after the header
//   +72 u64 header_checksum XXH3-64 of bytes [0, 72)
// RunEntry (48 bytes): the events of one stream in this segment
//   u64 name_hash, u64 first_version, u64 last_position, u64 last_timestamp,
//   u32 count, u32 first_offset_index, u32 name_offset, u32 name_size
// TipEntry (40 bytes): every stream's state as of the end of this segment, cumulative over
//   all earlier segments, so that opening the store reads one table instead of the log:
//   u64 name_hash, u64 last_version, u64 last_position, u64 last_timestamp,
//   u32 name_offset, u32 name_size
// Sparse (16 bytes): u64 position, u64 offset of a batch that starts there
// names: the stream names the entries point into (name_hash = XXH3-64 of the name).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

#include "storage/file.h"
#include "storage/format.h"
#include "storage/mem_index.h"
#include "storage/status.h"

namespace esd::storage {

inline constexpr uint64_t kIndexMagic = 0x3130584449445345ull;  // "ESDIDX01"
inline constexpr size_t kIndexHeaderSize = 80;
// The index file's own layout version, apart from the segments' (format::kFormatVersion):
// scavenge (format 2) changed the segments, not this layout. An index of a rewritten segment
// has runs only for what remained, and the same tips as before the rewrite.
inline constexpr uint32_t kIndexFormatVersion = 1;

class IndexFile {
 public:
  // Writes the index of a sealed segment. `previous` is the index of the segment before
  // (nullptr for the first), whose tips are carried forward; `extra_tips` (a scavenged
  // segment's tips record, format.h) update them too, before this segment's own runs.
  // Scavenge writes the index of a rewritten segment with `previous` = its old index: the
  // kept runs end where the old ones did, so the tips come out the same.
  static Status Write(const std::filesystem::path& path, SegmentId id, GlobalPosition first_position,
                      GlobalPosition end_position, uint64_t end_offset, const MemIndex& index,
                      const IndexFile* previous, std::span<const format::TipsEntry> extra_tips = {});

  // Maps and verifies the file: both checksums, that it belongs to this segment, and that
  // every offset in it (event, sparse, end) lies inside the segment's `segment_bytes` and
  // every position inside the segment's range, so lookups need no further bounds checks.
  // kCorruption when damaged, kNotFound when missing.
  static Result<std::unique_ptr<IndexFile>> Load(const std::filesystem::path& path, SegmentId id,
                                                 GlobalPosition first_position, uint64_t segment_bytes);

  template <typename F>  // f(std::string_view stream, const StreamRun&), in hash order
  void ForEachRun(F&& f) const {
    for (uint32_t i = 0; i < header_.run_count; ++i) {
      const RunEntry& e = runs_[i];
      f(Name(e.name_offset, e.name_size), ToRun(e));
    }
  }

  std::optional<StreamRun> Find(std::string_view stream) const;
  std::optional<StreamTip> Tip(std::string_view stream) const;
  std::optional<SparseEntry> SparseFloor(GlobalPosition position) const;
  template <typename F>  // f(std::string_view stream, const StreamTip&), in hash order
  void ForEachTip(F&& f) const {
    for (uint32_t i = 0; i < header_.tip_count; ++i) f(Name(tips_[i].name_offset, tips_[i].name_size), TipAt(i));
  }
  // The tip that ForEachTip visits `i`-th (i < tip_count()): O(1), where Tip searches.
  StreamTip TipAt(size_t i) const {
    const TipEntry& t = tips_[i];
    return StreamTip{StreamVersion(t.last_version), GlobalPosition(t.last_position), t.last_timestamp};
  }

  GlobalPosition end_position() const { return GlobalPosition(header_.end_position); }
  uint64_t end_offset() const { return header_.end_offset; }
  size_t run_count() const { return header_.run_count; }
  size_t tip_count() const { return header_.tip_count; }

  struct Header {
    uint64_t magic;
    uint32_t format_version;
    uint32_t header_size;
    uint64_t segment_id;
    uint64_t first_position;
    uint64_t end_position;
    uint32_t end_offset;
    uint32_t run_count;
    uint32_t offset_count;
    uint32_t tip_count;
    uint32_t sparse_count;
    uint32_t names_size;
    uint64_t body_checksum;
    uint64_t header_checksum;
  };
  struct RunEntry {
    uint64_t name_hash;
    uint64_t first_version;
    uint64_t last_position;
    uint64_t last_timestamp;
    uint32_t count;
    uint32_t first_offset_index;
    uint32_t name_offset;
    uint32_t name_size;
  };
  struct TipEntry {
    uint64_t name_hash;
    uint64_t last_version;
    uint64_t last_position;
    uint64_t last_timestamp;
    uint32_t name_offset;
    uint32_t name_size;
  };

 private:
  IndexFile() = default;
  std::string_view Name(uint32_t offset, uint32_t size) const;
  StreamRun ToRun(const RunEntry& e) const {
    return StreamRun{StreamVersion(e.first_version), std::span<const uint32_t>(offsets_ + e.first_offset_index, e.count),
                     GlobalPosition(e.last_position), e.last_timestamp};
  }
  template <typename Entry>
  const Entry* Lookup(const Entry* entries, size_t count, std::string_view stream) const;

  MappedFile map_;  // of the file, which is closed once mapped
  Header header_{};
  const RunEntry* runs_ = nullptr;
  const uint32_t* offsets_ = nullptr;
  const TipEntry* tips_ = nullptr;
  const SparseEntry* sparse_ = nullptr;
  const char* names_ = nullptr;
};

static_assert(sizeof(IndexFile::Header) == kIndexHeaderSize);
static_assert(sizeof(IndexFile::RunEntry) == 48);
static_assert(sizeof(IndexFile::TipEntry) == 40);
static_assert(sizeof(SparseEntry) == 16);

uint64_t StreamNameHash(std::string_view stream);

// The note that recovery logs and verify prints for an index file that Load refused with
// `why` (missing, damaged, of another segment): open rebuilds it, so nothing is lost.
std::string IndexRebuildNote(const std::string& file, const Status& why);

}  // namespace esd::storage
