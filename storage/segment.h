// One segment file: its header, a read-write descriptor for the writer and a read-only
// mapping of the whole file for readers. Plus the scanner that walks and verifies its
// batches, used by recovery and by index rebuilds.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/file.h"
#include "storage/format.h"
#include "storage/sharded_map.h"  // StringHash
#include "storage/status.h"

namespace esd::storage {

// DATA/segments/<first position, 20 digits>.seg and .idx
std::filesystem::path SegmentPath(const std::filesystem::path& segments_dir, GlobalPosition first);
std::filesystem::path IndexPath(const std::filesystem::path& segments_dir, GlobalPosition first);

class Segment {
 public:
  // Opens an existing segment and checks its header. Nothing is written: a file shorter
  // than the size in its header (a backup's copy of an active segment ends at its last
  // batch) is mapped as it is, and size() and bytes() cover just the bytes it has; once
  // JudgeSegment has found it sound, ExtendToDeclaredSize makes it whole for writing.
  static Result<std::unique_ptr<Segment>> Open(const std::filesystem::path& path);
  // The same on a read-only descriptor, for checking files (verify, dump).
  static Result<std::unique_ptr<Segment>> OpenReadOnly(const std::filesystem::path& path);

  // Turns a zero-filled spare file into segment `id` starting at `first`: writes and syncs
  // the header, renames the spare to its final name and syncs the directory.
  static Result<std::unique_ptr<Segment>> Activate(File spare, const std::filesystem::path& spare_path,
                                                   const std::filesystem::path& segments_dir, SegmentId id,
                                                   GlobalPosition first, uint64_t size);

  // A short file extended to its declared size (a hole, which reads as zeros: the
  // Preallocator fills it ahead of the writer), synced, and mapped. Open only.
  Status ExtendToDeclaredSize();

  SegmentId id() const { return id_; }
  GlobalPosition first_position() const { return first_; }
  uint64_t size() const { return map_.size(); }           // bytes mapped: the file's, at most declared
  uint64_t declared_size() const { return declared_; }    // the size in the header
  bool is_short() const { return size() < declared_; }
  // Set for a segment that scavenge rewrote (format.h): one past the last position it held
  // before anything was removed, where the next segment starts. 0 otherwise. Positions in
  // it rise with holes, and a stream's versions may jump forward.
  GlobalPosition scavenged_end() const { return scavenged_end_; }
  bool scavenged() const { return scavenged_end_.value != 0; }
  const std::filesystem::path& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return map_.bytes(); }
  const File& file() const { return file_; }

  // ---- Verification for readers: nothing unverified leaves the store ----
  // Makes sure the batch that holds byte `offset` (and every batch before it) has had its
  // checksum and ScanSegment's record checks verified, scanning no further than `limit`
  // (the published end of the log in this segment). A batch that does not verify is
  // recorded as a damaged range, from its start to the next intact batch after it (found by
  // its header and checksum), and counted once in `*found`; verification goes on after it.
  // Returns kCorruption (Status::Damaged: file, offset, position) when `offset` lies in a
  // damaged range. Thread-safe; the common case (verified, no damage) is one atomic load.
  Status Verify(uint64_t offset, uint64_t limit, std::atomic<uint64_t>* found) const;
  // The same, checking the bytes in `copy` (the file's bytes from `copy_offset` on, read
  // from below `limit`) rather than the mapping where it can: a sequential reader that
  // copies the log (ReadBuffer) verifies what it serves without touching the mapping. What
  // does not verify cleanly in the copy is verified on the mapping, as Verify does.
  Status VerifyCopy(uint64_t offset, uint64_t limit, std::span<const uint8_t> copy, uint64_t copy_offset,
                    std::atomic<uint64_t>* found) const;
  // For a damaged range that holds `offset`: where the next intact batch starts, and its
  // first position (a reader that wants only later positions may go on from there).
  std::optional<std::pair<uint64_t, GlobalPosition>> ResumeAfterDamage(uint64_t offset) const;
  // Verifies everything below `limit`; returns the first damage, if any.
  Status VerifyAll(uint64_t limit, std::atomic<uint64_t>* found) const;
  // For bytes whose batches were verified by other means: recovery's scan, or the writer
  // that encoded them. `end_offset` is a batch boundary where position `end_position` starts.
  void MarkVerified(uint64_t end_offset, GlobalPosition end_position, TimestampMicros last_timestamp) const;
  uint64_t verified_offset() const { return verified_offset_.load(std::memory_order_acquire); }

 private:
  Segment() = default;
  static Result<std::unique_ptr<Segment>> OpenAs(const std::filesystem::path& path, bool writable);
  std::filesystem::path path_;
  SegmentId id_;
  GlobalPosition first_;
  uint64_t declared_ = 0;
  GlobalPosition scavenged_end_;
  File file_;
  MappedFile map_;
  void AdvanceVerified(uint64_t upto, uint64_t limit, std::atomic<uint64_t>* found) const;  // verify_mu_ held
  struct Damage {
    uint64_t begin, end;  // the bytes refused: the bad batch up to the next intact one
    GlobalPosition end_position;  // where the batch at `end` starts (when end < limit)
    bool resumes;                 // an intact batch follows at `end`
    Status status;
  };
  // Readers' verification state; the offset and the flag are read unlocked, the rest under
  // verify_mu_. Invariant: verified_offset_ is a batch boundary (or the end of a damaged
  // range), and every byte below it is verified or inside damages_.
  mutable std::mutex verify_mu_;
  mutable std::atomic<uint64_t> verified_offset_{format::kSegmentHeaderSize};
  mutable std::atomic<bool> has_damage_{false};
  mutable GlobalPosition verified_position_;
  mutable TimestampMicros verified_timestamp_ = 0;
  mutable std::vector<Damage> damages_;  // in offset order
};

// Creates `path` as a file of `size` bytes (ftruncate: its length never changes again) whose
// first `zero_prefix` bytes are real zeros (written, so that their blocks are allocated),
// all synced: the size and the zeros are durable when it returns. The rest is a hole, which
// reads as zeros and is filled later (Preallocator). On failure (kOutOfSpace above all) or
// when `*cancel` becomes true (checked every MiB; kClosed) the partial file is removed so it
// holds no space.
Status CreateSegmentFile(const std::filesystem::path& path, uint64_t size, uint64_t zero_prefix,
                         const std::atomic<bool>* cancel = nullptr);
// The same with every byte written.
Status CreateZeroFilledFile(const std::filesystem::path& path, uint64_t size,
                            const std::atomic<bool>* cancel = nullptr);

// A batch found by the scanner, with the offsets of its event records.
struct ScannedBatch {
  uint64_t offset;
  format::BatchHeader header;
  std::string_view stream;
  StreamVersion first_version;
  std::span<const uint32_t> event_offsets;  // segment offsets
  bool in_scavenged_segment = false;  // its stream's versions may jump forward here
};

struct ScanResult {
  uint64_t end_offset = 0;         // first byte after the last good batch
  GlobalPosition end_position;     // one past its last event
  TimestampMicros last_timestamp = 0;
  bool clean = true;               // stopped at the end of the log (zeros)
  // When not clean: what is wrong at end_offset, and whether the batch there was whole
  // (its checksum held, but it does not fit the log: a wrong position, stamp, version ...)
  // or ran past the end of the file.
  std::string problem;
  bool intact = false;
  bool past_end_of_file = false;
  // The tips record of a scavenged segment (format.h), when the scan met one: its offset and
  // bytes. ForEachTipsEntry reads it; the scan checked that it parses.
  uint64_t tips_offset = 0;
  std::span<const uint8_t> tips_record;
};

// Checks a good batch beyond what the scanner itself can: empty to accept it, else why not
// (the batch is then treated as intact but wrong, and the scan stops before it).
using BatchJudge = std::function<std::string(const ScannedBatch&)>;

// Walks batches from `offset`, verifying checksums, the segment id stamp, dense positions
// starting at `first`, non-decreasing timestamps and every event record, then `judge` when
// given. Calls `on_batch` for each good batch, and stops at the end of the log or at the
// first bad batch.
ScanResult ScanSegment(const Segment& segment, uint64_t offset, GlobalPosition first,
                       TimestampMicros min_timestamp,
                       const std::function<void(const ScannedBatch&)>& on_batch,
                       const BatchJudge& judge = {}, uint64_t stop_at = UINT64_MAX);

// What a segment holds, judged by the rules that recovery and verify share (one function,
// so that verify reports as damage exactly what open refuses, and as a note what open
// repairs by itself):
//  - kClean: the log ends in zeros (or exactly at the end of a short file).
//  - kTornTail: the last segment's log ends in a batch that does not verify and that no
//    later intact batch vouches for (its sync mark). Open cuts it: `cut_bytes` from
//    scan.end_offset to the last non-zero byte.
//  - kDamaged: anything else that stops the scan: a bad batch in a sealed segment, one
//    vouched for by a later batch, a whole batch that does not fit the log, or a short file
//    that ends inside a batch (esd never makes one: something cut the file).
struct SegmentVerdict {
  enum class Kind { kClean, kTornTail, kDamaged };
  Kind kind = Kind::kClean;
  ScanResult scan;
  uint64_t cut_bytes = 0;  // kTornTail
  std::string problem;     // kTornTail, kDamaged: the words for both tools
};
SegmentVerdict JudgeSegment(const Segment& segment, bool last_segment,
                            const std::function<void(const ScannedBatch&)>& on_batch, const BatchJudge& judge = {});

// "segments/<name>"
std::string SegmentFileName(const std::filesystem::path& path);

// The segment files in `segments_dir`, in log order (by the first position in their name),
// and the .seg files whose name is not 20 digits (which open refuses). kIOError when it
// cannot list the directory.
struct SegmentFiles {
  std::vector<std::pair<GlobalPosition, std::filesystem::path>> files;
  std::vector<std::filesystem::path> misnamed;
};
Result<SegmentFiles> ListSegmentFiles(const std::filesystem::path& segments_dir);
// The note that recovery logs and verify prints for a torn tail.
std::string TornTailNote(const Segment& segment, const SegmentVerdict& v);
// The words for a stream whose versions do not continue (recovery and verify alike).
std::string VersionGapProblem(std::string_view stream, StreamVersion found, StreamVersion expected);
// Whether a batch (or index run) of a stream at `found` may follow `expected`: equal, or, in
// a scavenged segment, later (the versions between were removed).
inline bool VersionContinues(StreamVersion found, StreamVersion expected, bool in_scavenged_segment) {
  return found == expected || (in_scavenged_segment && found > expected);
}

// Each stream's next version, for a walk over the whole log in order (verify, salvage): the
// rule recovery checks against the index tips, that a stream's versions stay dense. In a
// scavenged segment a stream may jump forward (what was removed), never back or repeat.
class NextVersions {
 public:
  // Empty when `b` continues its stream, else the problem (a BatchJudge).
  std::string Check(const ScannedBatch& b) const;
  void Record(const ScannedBatch& b) { Set(b.stream, b.first_version + b.header.event_count); }
  // A scavenged segment's tips record: where its fully removed streams stood (call after the
  // segment's batches).
  void RecordTips(const ScanResult& scan);
  void Set(std::string_view stream, StreamVersion next) { next_[std::string(stream)] = next; }
  void Clear() { next_.clear(); }

 private:
  std::unordered_map<std::string, StreamVersion, StringHash, std::equal_to<>> next_;
};

// After a bad batch at `bad_offset`: the end of the last non-zero byte in the segment, and
// whether a later, intact batch says the bad one had been durable (its sync_mark lies past
// `bad_offset`). Vouched-for means corruption; otherwise the bytes are a torn tail.
struct TailAnalysis {
  uint64_t nonzero_end = 0;
  bool vouched_for = false;
};
TailAnalysis AnalyzeTail(const Segment& segment, uint64_t bad_offset);

}  // namespace esd::storage
