// Stream lifecycle: metadata, deletion, truncation and expiry (docs/storage.md, "Lifecycle").
//
// The metadata of stream S lives in the log, as the events of the system stream "$$S": each
// event holds S's whole metadata as it is from then on (EncodeStreamMetadata below), so the
// last event of "$$S" is S's metadata. It is written through the writer like any append
// (durable before it is acknowledged, replayed at open, copied by backup, checked by verify)
// with an expected version of "$$S" itself. Event types say why it was written:
//
//   $metadata        Store::SetStreamMetadata, Store::TruncateStream
//   $streamDeleted   Store::DeleteStream (soft: truncate_before = last version + 1;
//                    hard: hard_deleted set, a tombstone)
//
// What is removed. An event of S at version v with commit time t is removed when
//   - S is hard-deleted, or
//   - v < truncate_before, or
//   - max_count is set and v <= last_version(S) - max_count, or
//   - max_age is set and t + max_age < now.
// Removal is a prefix of S's versions (timestamps never decrease along the log), so what
// remains of a stream is always versions [first kept, last]. "$$S" itself keeps only its last
// event (an implicit max_count of 1). No read path returns a removed event; scavenge
// (storage/scavenge.h) later frees its bytes. Removal is final from the moment it is
// acknowledged: a metadata change folds what the old metadata removed at that moment into
// truncate_before, and truncate_before never moves back, so raising max_count or max_age
// brings nothing back.
//
// Soft delete keeps S's versions: S reads as not found, and an append with no-stream (or
// exactly its last version) recreates it from the next version on. Hard delete is for good:
// appends, metadata changes, deletes and reads of S get kStreamDeleted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/status.h"
#include "storage/types.h"

namespace esd::storage {

inline constexpr std::string_view kMetadataStreamPrefix = "$$";
inline constexpr std::string_view kMetadataEventType = "$metadata";
inline constexpr std::string_view kStreamDeletedEventType = "$streamDeleted";
inline constexpr std::string_view kMetadataContentType = "application/vnd.esd.stream-metadata";

// "$$" + stream.
std::string MetadataStreamOf(std::string_view stream);
// True for "$$S"; `*target` gets S.
bool IsMetadataStream(std::string_view stream, std::string_view* target = nullptr);

struct StreamMetadata {
  std::optional<uint64_t> max_age_micros;  // events older than this are removed
  std::optional<uint64_t> max_count;       // only the newest max_count events remain (>= 1)
  StreamVersion truncate_before;           // versions below this are removed (0: none)
  bool hard_deleted = false;               // a tombstone: never written or read again
  std::string custom;                      // the user's own bytes, kept as given

  bool operator==(const StreamMetadata&) const = default;
};

// The metadata record, the data of every event of "$$S" (little-endian, 40 bytes + custom):
//   +0  u32 record_version   1
//   +4  u32 flags            bit 0: max_age set, bit 1: max_count set, bit 2: hard deleted
//   +8  u64 max_age_micros   +16 u64 max_count   +24 u64 truncate_before
//   +32 u32 custom_size      +36 u32 reserved (0)
//   +40 custom bytes
inline constexpr size_t kMetadataRecordHeaderSize = 40;
std::string EncodeStreamMetadata(const StreamMetadata& meta);
// kCorruption when the bytes are not a metadata record this version knows.
Result<StreamMetadata> DecodeStreamMetadata(std::string_view bytes);

// The first version of a stream that is not removed, given its metadata, its last version
// and the time now: versions below it are removed, by truncate_before and max_count. (max_age
// depends on each event's time: see Expired.) last_version + 1 when nothing remains.
StreamVersion FirstKeptVersion(const StreamMetadata& meta, StreamVersion last_version);
// True when max_age removes an event committed at `timestamp`.
bool Expired(const StreamMetadata& meta, TimestampMicros timestamp, TimestampMicros now);

// What is removed of one stream at one moment: the rules above, resolved against its metadata
// and its last version (Store::Impl::RemovalOf). Readers and scavenge use the same.
struct Removal {
  StreamVersion first_kept;                // versions below are removed (end: all of them)
  std::optional<uint64_t> max_age_micros;  // and events older than this
  TimestampMicros now = 0;
  bool hard_deleted = false;

  // No metadata: nothing is removed.
  static Removal None() { return Removal{}; }
  bool RemovesNothing() const { return first_kept.value == 0 && !max_age_micros && !hard_deleted; }
  bool Removes(StreamVersion version, TimestampMicros timestamp) const {
    return hard_deleted || version < first_kept ||
           (max_age_micros && now > timestamp && now - timestamp > *max_age_micros);
  }
};

// What a metadata change writes: `next` with what `current` removed as of `now` folded into
// truncate_before (removal is final), for a stream whose last version is `last` (nullopt: the
// stream has no event) and whose versions up to `expired_through` were removed by max_age
// (nullopt: none). kInvalidArgument when `next` asks for something impossible (max_count 0).
// A truncate_before lower than the current one is kept at the current one.
Result<StreamMetadata> NextMetadata(const StreamMetadata& current, StreamMetadata next,
                                    std::optional<StreamVersion> last,
                                    std::optional<StreamVersion> expired_through);

// "max-age=30s max-count=10 truncate-before=5 hard-deleted custom=12 bytes", for logs and tools.
std::string DescribeMetadata(const StreamMetadata& meta);

}  // namespace esd::storage
