// One segment file: its header, a read-write descriptor for the writer and a read-only
// mapping of the whole file for readers. Plus the scanner that walks and verifies its
// batches, used by recovery and by index rebuilds.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "storage/file.h"
#include "storage/format.h"
#include "storage/status.h"

namespace esd::storage {

// DATA/segments/<first position, 20 digits>.seg and .idx
std::filesystem::path SegmentPath(const std::filesystem::path& segments_dir, GlobalPosition first);
std::filesystem::path IndexPath(const std::filesystem::path& segments_dir, GlobalPosition first);

class Segment {
 public:
  // Opens an existing segment and checks its header. A file shorter than the size in its
  // header (a truncated tail) is extended with zeros, so that the mapping covers real bytes.
  static Result<std::unique_ptr<Segment>> Open(const std::filesystem::path& path);
  // The same without writing anything, for checking files (verify): a short file stays as
  // it is, and size() and bytes() cover just the bytes it has.
  static Result<std::unique_ptr<Segment>> OpenReadOnly(const std::filesystem::path& path);

  // Turns a zero-filled spare file into segment `id` starting at `first`: writes and syncs
  // the header, renames the spare to its final name and syncs the directory.
  static Result<std::unique_ptr<Segment>> Activate(File spare, const std::filesystem::path& spare_path,
                                                   const std::filesystem::path& segments_dir, SegmentId id,
                                                   GlobalPosition first, uint64_t size);

  SegmentId id() const { return id_; }
  GlobalPosition first_position() const { return first_; }
  uint64_t size() const { return map_.size(); }
  const std::filesystem::path& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return map_.bytes(); }
  const File& file() const { return file_; }

 private:
  Segment() = default;
  static Result<std::unique_ptr<Segment>> OpenAs(const std::filesystem::path& path, bool writable);
  std::filesystem::path path_;
  SegmentId id_;
  GlobalPosition first_;
  File file_;
  MappedFile map_;
};

// Creates `path` filled with `size` zero bytes, durable. On failure (kOutOfSpace above all)
// or when `*cancel` becomes true (checked every MiB; kClosed) the partial file is removed so
// it holds no space.
Status CreateZeroFilledFile(const std::filesystem::path& path, uint64_t size,
                            const std::atomic<bool>* cancel = nullptr);

// A batch found by the scanner, with the offsets of its event records.
struct ScannedBatch {
  uint64_t offset;
  format::BatchHeader header;
  std::string_view stream;
  StreamVersion first_version;
  std::span<const uint32_t> event_offsets;  // segment offsets
};

struct ScanResult {
  uint64_t end_offset = 0;         // first byte after the last good batch
  GlobalPosition end_position;     // one past its last event
  TimestampMicros last_timestamp = 0;
  bool clean = true;               // stopped at the end of the log (zeros)
  // When not clean: what is wrong at end_offset.
  std::string problem;
};

// Walks batches from `offset`, verifying checksums, the segment id stamp, dense positions
// starting at `first`, non-decreasing timestamps and every event record. Calls `on_batch`
// for each good batch, and stops at the end of the log or at the first bad batch.
ScanResult ScanSegment(const Segment& segment, uint64_t offset, GlobalPosition first,
                       TimestampMicros min_timestamp,
                       const std::function<void(const ScannedBatch&)>& on_batch);

// After a bad batch at `bad_offset`: the end of the last non-zero byte in the segment, and
// whether a later, intact batch says the bad one had been durable (its sync_mark lies past
// `bad_offset`). Vouched-for means corruption; otherwise the bytes are a torn tail.
struct TailAnalysis {
  uint64_t nonzero_end = 0;
  bool vouched_for = false;
};
TailAnalysis AnalyzeTail(const Segment& segment, uint64_t bad_offset);

}  // namespace esd::storage
