#include "storage/format.h"

#include <xxhash.h>

#include <cassert>
#include <cstring>

namespace esd::storage::format {

uint64_t Checksum(const void* data, size_t size) { return XXH3_64bits(data, size); }

size_t EventRecordSize(std::string_view stream, const EventFields& e) {
  return AlignUp(kEventHeaderSize + stream.size() + e.type.size() + e.content_type.size() +
                 e.metadata.size() + e.data.size());
}

namespace {

uint8_t* Put(uint8_t* p, std::string_view s) {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

}  // namespace

void EncodeBatch(std::span<uint8_t> dst, std::string_view stream, std::span<const EventFields> events,
                 const BatchStamp& stamp, std::span<uint32_t> event_offsets) {
  assert(!events.empty());
  assert(event_offsets.empty() || event_offsets.size() == events.size());
  size_t offset = kBatchHeaderSize;
  for (size_t i = 0; i < events.size(); ++i) {
    const EventFields& e = events[i];
    const size_t record_size = EventRecordSize(stream, e);
    assert(offset + record_size <= dst.size());
    EventHeader h{};
    h.position = stamp.first_position.value + i;
    h.stream_version = stamp.first_version.value + i;
    std::memcpy(h.event_id, e.id.bytes.data(), sizeof(h.event_id));
    h.timestamp_micros = stamp.timestamp;
    h.record_size = static_cast<uint32_t>(record_size);
    h.data_size = static_cast<uint32_t>(e.data.size());
    h.metadata_size = static_cast<uint32_t>(e.metadata.size());
    h.stream_size = static_cast<uint16_t>(stream.size());
    h.type_size = static_cast<uint16_t>(e.type.size());
    h.content_type_size = static_cast<uint16_t>(e.content_type.size());
    uint8_t* p = dst.data() + offset;
    std::memcpy(p, &h, sizeof(h));
    uint8_t* q = p + kEventHeaderSize;
    q = Put(q, stream);
    q = Put(q, e.type);
    q = Put(q, e.content_type);
    q = Put(q, e.metadata);
    q = Put(q, e.data);
    std::memset(q, 0, p + record_size - q);  // padding is part of the checksum: make it 0
    if (!event_offsets.empty()) event_offsets[i] = static_cast<uint32_t>(offset);
    offset += record_size;
  }
  assert(offset == dst.size());
  BatchHeader b{};
  b.batch_size = static_cast<uint32_t>(offset);
  b.kind = kBatchKindEvents;
  b.event_count = static_cast<uint32_t>(events.size());
  b.first_position = stamp.first_position.value;
  b.segment_id = stamp.segment_id.value;
  b.timestamp_micros = stamp.timestamp;
  b.sync_mark = stamp.sync_mark.value;
  std::memcpy(dst.data(), &b, sizeof(b));
  b.checksum = Checksum(dst.data() + 8, offset - 8);
  std::memcpy(dst.data(), &b.checksum, sizeof(b.checksum));
}

void EncodeSegmentHeader(std::span<uint8_t, kSegmentHeaderSize> dst, SegmentId id,
                         GlobalPosition first_position, uint64_t segment_size,
                         TimestampMicros created, GlobalPosition scavenged_end) {
  SegmentHeader h{};
  h.scavenged_end_position = scavenged_end.value;
  h.magic = kSegmentMagic;
  h.format_version = kFormatVersion;
  h.header_size = kSegmentHeaderSize;
  h.segment_id = id.value;
  h.first_position = first_position.value;
  h.segment_size = segment_size;
  h.created_micros = created;
  h.checksum = Checksum(&h, offsetof(SegmentHeader, checksum));
  std::memcpy(dst.data(), &h, sizeof(h));
}

HeaderCheck DecodeSegmentHeader(std::span<const uint8_t> bytes, SegmentHeader* out) {
  if (bytes.size() < kSegmentHeaderSize) return HeaderCheck::kBadField;
  SegmentHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.magic != kSegmentMagic) return HeaderCheck::kBadMagic;
  if (h.checksum != Checksum(&h, offsetof(SegmentHeader, checksum))) return HeaderCheck::kBadChecksum;
  if (h.format_version < kOldestFormatVersion || h.format_version > kFormatVersion) return HeaderCheck::kBadVersion;
  // Format 1 had 0 at +48; a scavenged segment is compact, so only it may be small.
  const bool scavenged = h.scavenged_end_position != 0;
  if (h.header_size != kSegmentHeaderSize || (scavenged && h.format_version < 2) ||
      h.segment_size < (scavenged ? kSegmentHeaderSize : kMinSegmentSize) || h.segment_size > kMaxSegmentSize ||
      h.segment_size % kAlignment != 0 || (scavenged && h.scavenged_end_position < h.first_position)) {
    return HeaderCheck::kBadField;
  }
  *out = h;
  return HeaderCheck::kOk;
}

const char* BatchCheckName(BatchCheck c) {
  switch (c) {
    case BatchCheck::kOk: return "ok";
    case BatchCheck::kEndOfLog: return "end of log";
    case BatchCheck::kTruncated: return "truncated batch";
    case BatchCheck::kBadHeader: return "bad batch header";
    case BatchCheck::kBadChecksum: return "checksum mismatch";
  }
  return "?";
}

BatchCheck CheckBatch(std::span<const uint8_t> bytes, bool verify_checksum, BatchHeader* out) {
  if (bytes.size() < kBatchHeaderSize) {
    for (uint8_t b : bytes) {
      if (b != 0) return BatchCheck::kTruncated;
    }
    return BatchCheck::kEndOfLog;
  }
  BatchHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.batch_size == 0) {
    // A zero size with anything else set is a header that was only partly written.
    static const uint8_t kZero[kBatchHeaderSize] = {};
    return std::memcmp(bytes.data(), kZero, kBatchHeaderSize) == 0 ? BatchCheck::kEndOfLog
                                                                   : BatchCheck::kBadHeader;
  }
  if (h.batch_size % kAlignment != 0 || h.batch_size < kBatchHeaderSize) return BatchCheck::kBadHeader;
  if (h.batch_size > bytes.size()) return BatchCheck::kTruncated;
  if (verify_checksum && Checksum(bytes.data() + 8, h.batch_size - 8) != h.checksum) {
    return BatchCheck::kBadChecksum;
  }
  if ((h.kind & kKindSafeToIgnore) == 0) {
    if (h.kind != kBatchKindEvents || h.event_count == 0 ||
        h.event_count > (h.batch_size - kBatchHeaderSize) / kEventHeaderSize) {
      return BatchCheck::kBadHeader;
    }
  }
  *out = h;
  return BatchCheck::kOk;
}

namespace {

// The record whose header is `h` fits in `available` bytes, and its fields in the record.
bool RecordFits(const EventHeader& h, size_t available) {
  const uint64_t fields = uint64_t{h.stream_size} + h.type_size + h.content_type_size +
                          h.metadata_size + h.data_size;
  return h.record_size % kAlignment == 0 && h.record_size <= available && kEventHeaderSize + fields <= h.record_size &&
         h.record_size - (kEventHeaderSize + fields) < kAlignment;
}

}  // namespace

bool CheckEventRecords(std::span<const uint8_t> bytes, uint64_t first_position, uint32_t count) {
  size_t at = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (bytes.size() - at < kEventHeaderSize) return false;
    EventHeader h;
    std::memcpy(&h, bytes.data() + at, sizeof(h));
    if (h.position != first_position + i || !RecordFits(h, bytes.size() - at)) return false;
    at += h.record_size;
  }
  return at == bytes.size();
}

bool ParseEvent(std::span<const uint8_t> bytes, EventView* out, uint32_t* record_size) {
  if (bytes.size() < kEventHeaderSize) return false;
  EventHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (!RecordFits(h, bytes.size())) return false;
  const char* p = reinterpret_cast<const char*>(bytes.data()) + kEventHeaderSize;
  out->position = GlobalPosition(h.position);
  out->version = StreamVersion(h.stream_version);
  std::memcpy(out->id.bytes.data(), h.event_id, sizeof(h.event_id));
  out->timestamp = h.timestamp_micros;
  out->stream = std::string_view(p, h.stream_size);
  p += h.stream_size;
  out->type = std::string_view(p, h.type_size);
  p += h.type_size;
  out->content_type = std::string_view(p, h.content_type_size);
  p += h.content_type_size;
  out->metadata = std::string_view(p, h.metadata_size);
  p += h.metadata_size;
  out->data = std::string_view(p, h.data_size);
  *record_size = h.record_size;
  return true;
}

size_t TipsRecordSize(std::span<const TipsEntry> entries) {
  size_t n = kBatchHeaderSize;
  for (const TipsEntry& e : entries) n += AlignUp(kTipsEntryHeaderSize + e.stream.size());
  return n;
}

void EncodeTipsRecord(std::span<uint8_t> dst, std::span<const TipsEntry> entries, const BatchStamp& stamp) {
  assert(dst.size() == TipsRecordSize(entries));
  std::memset(dst.data(), 0, dst.size());
  size_t at = kBatchHeaderSize;
  for (const TipsEntry& e : entries) {
    uint8_t* p = dst.data() + at;
    const uint64_t fixed[3] = {e.last_version.value, e.last_position.value, e.last_timestamp};
    std::memcpy(p, fixed, sizeof(fixed));
    const uint16_t name_size = static_cast<uint16_t>(e.stream.size());
    std::memcpy(p + 24, &name_size, sizeof(name_size));
    Put(p + kTipsEntryHeaderSize, e.stream);
    at += AlignUp(kTipsEntryHeaderSize + e.stream.size());
  }
  BatchHeader b{};
  b.batch_size = static_cast<uint32_t>(dst.size());
  b.kind = kBatchKindTips;
  b.event_count = static_cast<uint32_t>(entries.size());
  b.first_position = stamp.first_position.value;
  b.segment_id = stamp.segment_id.value;
  b.timestamp_micros = stamp.timestamp;
  b.sync_mark = stamp.sync_mark.value;
  std::memcpy(dst.data(), &b, sizeof(b));
  b.checksum = Checksum(dst.data() + 8, dst.size() - 8);
  std::memcpy(dst.data(), &b.checksum, sizeof(b.checksum));
}

bool ForEachTipsEntry(std::span<const uint8_t> bytes, const std::function<void(const TipsEntry&)>& visit) {
  if (bytes.size() < kBatchHeaderSize) return false;
  BatchHeader h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.kind != kBatchKindTips || h.batch_size != bytes.size()) return false;
  size_t at = kBatchHeaderSize;
  for (uint32_t i = 0; i < h.event_count; ++i) {
    if (bytes.size() - at < kTipsEntryHeaderSize) return false;
    const uint8_t* p = bytes.data() + at;
    uint64_t fixed[3];
    std::memcpy(fixed, p, sizeof(fixed));
    uint16_t name_size;
    std::memcpy(&name_size, p + 24, sizeof(name_size));
    const size_t size = AlignUp(kTipsEntryHeaderSize + name_size);
    if (name_size == 0 || name_size > kMaxStreamNameSize || bytes.size() - at < size) return false;
    visit({std::string_view(reinterpret_cast<const char*>(p + kTipsEntryHeaderSize), name_size),
           StreamVersion(fixed[0]), GlobalPosition(fixed[1]), fixed[2]});
    at += size;
  }
  return at == bytes.size();
}

}  // namespace esd::storage::format
