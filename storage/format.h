// The on-disk format of the log. This header is the document: the diagrams, the constants
// and the static_asserts below are the format, and tests/storage/format_test.cc pins the
// bytes. Changing anything here changes the format: bump kFormatVersion.
//
// All integers are little-endian. Every record starts and ends on an 8-byte boundary, so a
// reader can use a record in place inside the memory-mapped segment.
//
// A segment file (DATA/segments/<first-position, 20 digits>.seg) has a fixed size, chosen
// when the store is created. It is zero-filled before use, so all-zero bytes mean "nothing
// written here yet": a batch header whose size field is 0 ends the log.
//
//   +----------------+---------+---------+-----+---------+-------------------------+
//   | SegmentHeader  | Batch 0 | Batch 1 | ... | Batch n | 0 0 0 0 ... (end of log) |
//   | 64 bytes       |         |         |     |         |                         |
//   +----------------+---------+---------+-----+---------+-------------------------+
//
// SegmentHeader (64 bytes)
//   +0  u64 magic            "ESDSEG01"
//   +8  u32 format_version   kFormatVersion
//   +12 u32 header_size      64
//   +16 u64 segment_id       0, 1, 2, ... one more than the segment before
//   +24 u64 first_position   global position of the first event this segment holds
//   +32 u64 segment_size     size of the file in bytes
//   +40 u64 created_micros   wall clock when the segment became active
//   +48 u64 scavenged_end_position   (format 2; "reserved, 0" in format 1) 0 for a segment
//                            as the writer made it; for one that scavenge rewrote (storage/
//                            scavenge.h), one past the last position the segment held before
//                            anything was removed from it: the next segment starts there.
//   +56 u64 checksum         XXH3-64 of bytes [0, 56)
//
// Format versions. 1: the first. 2: the segment header's +48 became scavenged_end_position,
// and a segment may end in a tips record (below). A reader of version 2 reads both; every new
// segment is written as 2 (a version-1 segment never has either, so it reads the same).
//
// A scavenged segment (scavenged_end_position != 0) is compact: its file ends at its last
// record and segment_size is that length (at least the header). Its batches are what remained
// of the original ones: each keeps its header fields but first_position (that of its first
// kept event), event_count, checksum and sync_mark (its own offset: everything before it is
// durable), and holds the kept event records byte for byte. So positions rise with holes and
// a stream's versions may jump forward inside it; everything else is as in any segment.
//
// A batch is what one append wrote: 1..N events of one stream, atomically.
//
//   +-------------+---------+---------+-----+-------------+
//   | BatchHeader | Event 0 | Event 1 | ... | Event N-1   |
//   | 56 bytes    |         |         |     |             |
//   +-------------+---------+---------+-----+-------------+
//   |<------------------- batch_size ------------------->|
//
// BatchHeader (56 bytes)
//   +0  u64 checksum         XXH3-64 of bytes [8, batch_size): the rest of the header and
//                            every event; a batch is kept only if this holds
//   +8  u32 batch_size       bytes of header and events, a multiple of 8; 0 = end of log
//   +12 u16 kind             kBatchKindEvents, or kBatchKindTips; kKindSafeToIgnore set = a
//                            reader that does not know the kind skips batch_size bytes
//   +14 u16 flags            0
//   +16 u32 event_count      >= 1 for kBatchKindEvents
//   +20 u32 reserved         0
//   +24 u64 first_position   global position of event 0; the others follow densely
//   +32 u64 segment_id       the id of the segment this batch was written into
//   +40 u64 timestamp_micros commit time of the batch, never less than the batch before
//   +48 u64 sync_mark        offset in this segment below which every byte was durable
//                            (fdatasync'ed) before this batch was written. Recovery uses it
//                            to tell a torn tail (the bad batch is at or past every later
//                            batch's sync_mark: it was never acknowledged) from corruption
//                            (a later batch says the bad one had been durable)
//
// Event record (64-byte header, then the variable fields, then zero padding to 8)
//   +0  u64 position         global position
//   +8  u64 stream_version   0-based version in its stream
//   +16 u8[16] event_id      chosen by the client; the key of idempotent retries
//   +32 u64 timestamp_micros = the batch's timestamp (so one record stands alone)
//   +40 u32 record_size      header + fields + padding, a multiple of 8
//   +44 u32 data_size
//   +48 u32 metadata_size
//   +52 u16 stream_size      1..255
//   +54 u16 type_size        1..255
//   +56 u16 content_type_size 0..255 (0: unspecified)
//   +58 u16 flags            0
//   +60 u32 reserved         0
//   +64 stream | type | content_type | metadata | data | 0-padding
//
// Tips record (kind kBatchKindTips = kKindSafeToIgnore | 2; format 2, scavenged segments
// only, as their last record). A BatchHeader whose event_count is the number of entries,
// first_position = the segment's scavenged_end_position, timestamp_micros = the segment's
// last commit time before scavenge, sync_mark = its own offset, checksummed like a batch;
// then one entry per stream all of whose events in this segment were removed, in any order:
//   +0  u64 last_version     the stream's last version as of the end of this segment
//   +8  u64 last_position    its position
//   +16 u64 last_timestamp   its commit time
//   +24 u16 name_size        1..255
//   +26 u16 reserved 0       +28 u32 reserved 0
//   +32 name, then zero padding to 8
// Without it, an index rebuilt from the rewritten segment would lose those streams' tips,
// and a soft-deleted stream would start its versions again (they must continue).
//
// The per-stream index file of a sealed segment (<first-position>.idx) has its own layout,
// documented in storage/index_file.h.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "storage/types.h"

namespace esd::storage::format {

static_assert(std::endian::native == std::endian::little,
              "the format is little-endian and records are used in place");

inline constexpr uint32_t kFormatVersion = 2;      // what new segments are written as
inline constexpr uint32_t kOldestFormatVersion = 1;  // the oldest a reader accepts
inline constexpr uint64_t kSegmentMagic = 0x3130474553445345ull;  // "ESDSEG01" as bytes
inline constexpr size_t kAlignment = 8;
inline constexpr size_t kSegmentHeaderSize = 64;
inline constexpr size_t kBatchHeaderSize = 56;
inline constexpr size_t kEventHeaderSize = 64;

inline constexpr uint16_t kBatchKindEvents = 1;
inline constexpr uint16_t kKindSafeToIgnore = 0x8000;
inline constexpr uint16_t kBatchKindTips = kKindSafeToIgnore | 2;
inline constexpr size_t kTipsEntryHeaderSize = 32;

inline constexpr size_t kMaxStreamNameSize = 255;
inline constexpr size_t kMaxEventTypeSize = 255;
inline constexpr size_t kMaxContentTypeSize = 255;
// Offsets into a segment are u32 in the index files.
inline constexpr uint64_t kMaxSegmentSize = uint64_t{1} << 31;
inline constexpr uint64_t kMinSegmentSize = 64 * 1024;

struct SegmentHeader {
  uint64_t magic;
  uint32_t format_version;
  uint32_t header_size;
  uint64_t segment_id;
  uint64_t first_position;
  uint64_t segment_size;
  uint64_t created_micros;
  uint64_t scavenged_end_position;  // format 2; 0 in format 1
  uint64_t checksum;
};
static_assert(sizeof(SegmentHeader) == kSegmentHeaderSize);
static_assert(offsetof(SegmentHeader, scavenged_end_position) == 48);
static_assert(offsetof(SegmentHeader, segment_id) == 16);
static_assert(offsetof(SegmentHeader, first_position) == 24);
static_assert(offsetof(SegmentHeader, checksum) == 56);

struct BatchHeader {
  uint64_t checksum;
  uint32_t batch_size;
  uint16_t kind;
  uint16_t flags;
  uint32_t event_count;
  uint32_t reserved;
  uint64_t first_position;
  uint64_t segment_id;
  uint64_t timestamp_micros;
  uint64_t sync_mark;
};
static_assert(sizeof(BatchHeader) == kBatchHeaderSize);
static_assert(offsetof(BatchHeader, batch_size) == 8);
static_assert(offsetof(BatchHeader, event_count) == 16);
static_assert(offsetof(BatchHeader, first_position) == 24);
static_assert(offsetof(BatchHeader, segment_id) == 32);
static_assert(offsetof(BatchHeader, timestamp_micros) == 40);
static_assert(offsetof(BatchHeader, sync_mark) == 48);
static_assert(kBatchHeaderSize % kAlignment == 0);

struct EventHeader {
  uint64_t position;
  uint64_t stream_version;
  uint8_t event_id[16];
  uint64_t timestamp_micros;
  uint32_t record_size;
  uint32_t data_size;
  uint32_t metadata_size;
  uint16_t stream_size;
  uint16_t type_size;
  uint16_t content_type_size;
  uint16_t flags;
  uint32_t reserved;
};
static_assert(sizeof(EventHeader) == kEventHeaderSize);
static_assert(offsetof(EventHeader, event_id) == 16);
static_assert(offsetof(EventHeader, timestamp_micros) == 32);
static_assert(offsetof(EventHeader, record_size) == 40);
static_assert(offsetof(EventHeader, stream_size) == 52);
static_assert(offsetof(EventHeader, content_type_size) == 56);

constexpr size_t AlignUp(size_t n) { return (n + kAlignment - 1) & ~(kAlignment - 1); }

// The fields of one event as the caller gives them; views, not owned.
struct EventFields {
  EventId id;
  std::string_view type;
  std::string_view content_type;
  std::string_view metadata;
  std::string_view data;
};

// One event read from the log, in place. The views point into the segment mapping.
struct EventView {
  GlobalPosition position;
  StreamVersion version;
  EventId id;
  TimestampMicros timestamp = 0;
  std::string_view stream;
  std::string_view type;
  std::string_view content_type;
  std::string_view metadata;
  std::string_view data;
};

// Bytes an event takes in a batch, padding included.
size_t EventRecordSize(std::string_view stream, const EventFields& e);

// Everything the encoder needs besides the events.
struct BatchStamp {
  SegmentId segment_id;
  GlobalPosition first_position;
  StreamVersion first_version;
  TimestampMicros timestamp = 0;
  FileOffset sync_mark;
};

// Writes one complete batch (header, events, padding, checksum) to `dst`, which must hold
// exactly `batch_size` bytes = kBatchHeaderSize + the sum of EventRecordSize. Returns the
// byte offset of each event record within the batch through `event_offsets` (may be empty).
void EncodeBatch(std::span<uint8_t> dst, std::string_view stream, std::span<const EventFields> events,
                 const BatchStamp& stamp, std::span<uint32_t> event_offsets = {});

// `scavenged_end` 0 for a segment as the writer makes it (see the header layout above).
void EncodeSegmentHeader(std::span<uint8_t, kSegmentHeaderSize> dst, SegmentId id,
                         GlobalPosition first_position, uint64_t segment_size,
                         TimestampMicros created, GlobalPosition scavenged_end = GlobalPosition(0));

enum class HeaderCheck { kOk, kBadMagic, kBadVersion, kBadChecksum, kBadField };
HeaderCheck DecodeSegmentHeader(std::span<const uint8_t> bytes, SegmentHeader* out);

// What is at an offset of a segment.
enum class BatchCheck {
  kOk,           // a complete batch whose checksum holds
  kEndOfLog,     // zero bytes: nothing was written here
  kTruncated,    // the header claims more bytes than there are
  kBadHeader,    // sizes or fields that cannot be right
  kBadChecksum,  // complete, but the checksum does not hold
};
const char* BatchCheckName(BatchCheck c);

// Checks the batch at the start of `bytes` (the rest of the segment from there).
// `verify_checksum` false skips the hash but keeps every bounds check.
BatchCheck CheckBatch(std::span<const uint8_t> bytes, bool verify_checksum, BatchHeader* out);

// Parses the event record at the start of `bytes`, bounds-checked against the span.
// Returns false when the record's sizes do not fit: the caller reports corruption.
bool ParseEvent(std::span<const uint8_t> bytes, EventView* out, uint32_t* record_size);

// `bytes` is exactly `count` event records that ParseEvent would accept, at positions
// first_position, first_position + 1, ...: a check of a run that builds no view.
bool CheckEventRecords(std::span<const uint8_t> bytes, uint64_t first_position, uint32_t count);

// The whole record (header, fields, padding) that ParseEvent parsed `e` from: its views lie
// in the record, the stream name right after the header. Only for views from ParseEvent.
inline std::span<const uint8_t> RecordOf(const EventView& e) {
  const auto* begin = reinterpret_cast<const uint8_t*>(e.stream.data()) - kEventHeaderSize;
  return {begin, AlignUp(kEventHeaderSize + e.stream.size() + e.type.size() + e.content_type.size() +
                         e.metadata.size() + e.data.size())};
}

uint64_t Checksum(const void* data, size_t size);

// One entry of a tips record.
struct TipsEntry {
  std::string_view stream;
  StreamVersion last_version;
  GlobalPosition last_position;
  TimestampMicros last_timestamp = 0;
};
// Bytes a tips record with these entries takes.
size_t TipsRecordSize(std::span<const TipsEntry> entries);
// Writes a whole tips record (header, entries, checksum) to `dst` (TipsRecordSize bytes).
// `stamp.first_position` is the segment's scavenged_end_position; first_version is unused.
void EncodeTipsRecord(std::span<uint8_t> dst, std::span<const TipsEntry> entries, const BatchStamp& stamp);
// Calls `visit` for each entry of the tips record `bytes` (exactly the record, whose header
// CheckBatch accepted). False when the entries do not fit the record: damage.
bool ForEachTipsEntry(std::span<const uint8_t> bytes, const std::function<void(const TipsEntry&)>& visit);

}  // namespace esd::storage::format
