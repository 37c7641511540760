#include "storage/segment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace esd::storage {

namespace {

std::string PositionName(GlobalPosition first) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(first.value));
  return buf;
}

}  // namespace

std::filesystem::path SegmentPath(const std::filesystem::path& dir, GlobalPosition first) {
  return dir / (PositionName(first) + ".seg");
}

std::filesystem::path IndexPath(const std::filesystem::path& dir, GlobalPosition first) {
  return dir / (PositionName(first) + ".idx");
}

Result<std::unique_ptr<Segment>> Segment::Open(const std::filesystem::path& path) { return OpenAs(path, true); }

Result<std::unique_ptr<Segment>> Segment::OpenReadOnly(const std::filesystem::path& path) {
  return OpenAs(path, false);
}

Result<std::unique_ptr<Segment>> Segment::OpenAs(const std::filesystem::path& path, bool writable) {
  auto file = File::Open(path, writable ? O_RDWR : O_RDONLY);
  if (!file.ok()) return file.status();
  auto size = file->Size();
  if (!size.ok()) return size.status();
  uint8_t raw[format::kSegmentHeaderSize] = {};
  auto n = file->ReadAt(0, raw);
  if (!n.ok()) return n.status();
  format::SegmentHeader h;
  auto check = format::DecodeSegmentHeader(std::span(raw, *n), &h);
  if (check != format::HeaderCheck::kOk) {
    return Status::Corruption(path.string() + ": bad segment header (" +
                              (check == format::HeaderCheck::kBadMagic      ? "not a segment file"
                               : check == format::HeaderCheck::kBadVersion  ? "unknown format version"
                               : check == format::HeaderCheck::kBadChecksum ? "checksum mismatch"
                                                                            : "bad field") +
                              ")");
  }
  uint64_t mapped = h.segment_size;
  if (*size < h.segment_size) {
    if (writable) {
      Status s = file->WriteZeros(*size, h.segment_size - *size);
      if (s.ok()) s = file->DataSync();
      if (!s.ok()) return s;
    } else {
      mapped = *size;  // a mapping past the end of the file would fault where it is read
    }
  }
  auto map = MappedFile::Map(*file, mapped);
  if (!map.ok()) return map.status();
  std::unique_ptr<Segment> seg(new Segment());
  seg->path_ = path;
  seg->id_ = SegmentId(h.segment_id);
  seg->first_ = GlobalPosition(h.first_position);
  seg->file_ = std::move(file).value();
  seg->map_ = std::move(map).value();
  return seg;
}

Result<std::unique_ptr<Segment>> Segment::Activate(File spare, const std::filesystem::path& spare_path,
                                                   const std::filesystem::path& segments_dir, SegmentId id,
                                                   GlobalPosition first, uint64_t size) {
  uint8_t raw[format::kSegmentHeaderSize];
  format::EncodeSegmentHeader(std::span<uint8_t, format::kSegmentHeaderSize>(raw), id, first, size,
                              NowMicros());
  Status s = spare.WriteAt(0, raw);
  if (s.ok()) s = spare.DataSync();
  if (!s.ok()) return s;
  const auto path = SegmentPath(segments_dir, first);
  if (::rename(spare_path.c_str(), path.c_str()) != 0) return Status::IOError("rename " + path.string(), errno);
  s = SyncDirectory(segments_dir);
  if (!s.ok()) return s;
  auto map = MappedFile::Map(spare, size);
  if (!map.ok()) return map.status();
  std::unique_ptr<Segment> seg(new Segment());
  seg->path_ = path;
  seg->id_ = id;
  seg->first_ = first;
  seg->file_ = std::move(spare);
  seg->map_ = std::move(map).value();
  return seg;
}

Status CreateZeroFilledFile(const std::filesystem::path& path, uint64_t size, const std::atomic<bool>* cancel) {
  auto f = File::Open(path, O_RDWR | O_CREAT | O_TRUNC);
  if (!f.ok()) return f.status();
  // Synced every few MiB: filling 256 MiB and syncing once queued that much write-back
  // ahead of the writer's own fdatasync, which then stalled for ~100 ms (esbench p99.9).
  constexpr uint64_t kChunk = 1 << 20;
  constexpr uint64_t kSyncEvery = 8 << 20;
  Status s;
  for (uint64_t off = 0; off < size && s.ok(); off += kChunk) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) s = Status::Closed("cancelled");
    if (s.ok()) s = f->WriteZeros(off, std::min(kChunk, size - off));
    if (s.ok() && (off + kChunk) % kSyncEvery == 0) s = f->DataSync();
  }
  if (s.ok()) s = f->DataSync();
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  return Status::Ok();
}

ScanResult ScanSegment(const Segment& segment, uint64_t offset, GlobalPosition first,
                       TimestampMicros min_timestamp,
                       const std::function<void(const ScannedBatch&)>& on_batch) {
  const auto bytes = segment.bytes();
  ScanResult r;
  r.end_offset = offset;
  r.end_position = first;
  r.last_timestamp = min_timestamp;
  std::vector<uint32_t> offsets;
  auto fail = [&](std::string why) {
    r.clean = false;
    r.problem = std::move(why);
    return r;
  };
  while (true) {
    format::BatchHeader h;
    auto check = format::CheckBatch(bytes.subspan(r.end_offset), true, &h);
    if (check == format::BatchCheck::kEndOfLog) return r;
    if (check != format::BatchCheck::kOk) return fail(format::BatchCheckName(check));
    if (h.segment_id != segment.id().value) return fail("batch stamped with segment id " + std::to_string(h.segment_id));
    if ((h.kind & format::kKindSafeToIgnore) != 0 && h.kind != format::kBatchKindEvents) {
      r.end_offset += h.batch_size;  // a record kind from a newer version that may be skipped
      continue;
    }
    if (h.first_position != r.end_position.value) {
      return fail("batch starts at position " + std::to_string(h.first_position) + ", expected " +
                  std::to_string(r.end_position.value));
    }
    if (h.timestamp_micros < r.last_timestamp) return fail("timestamp goes backwards");
    offsets.clear();
    uint64_t at = r.end_offset + format::kBatchHeaderSize;
    const uint64_t batch_end = r.end_offset + h.batch_size;
    format::EventView first_event;
    for (uint32_t i = 0; i < h.event_count; ++i) {
      format::EventView ev;
      uint32_t size = 0;
      if (!format::ParseEvent(bytes.subspan(at, batch_end - at), &ev, &size)) {
        return fail("event " + std::to_string(i) + " of the batch does not parse");
      }
      if (i == 0) first_event = ev;
      if (ev.position.value != h.first_position + i || ev.stream != first_event.stream ||
          ev.version != first_event.version + i || ev.timestamp != h.timestamp_micros) {
        return fail("event " + std::to_string(i) + " of the batch is inconsistent with its batch");
      }
      offsets.push_back(static_cast<uint32_t>(at));
      at += size;
    }
    if (at != batch_end) return fail("batch size does not match its events");
    on_batch({r.end_offset, h, first_event.stream, first_event.version, offsets});
    r.end_offset = batch_end;
    r.end_position = r.end_position + h.event_count;
    r.last_timestamp = h.timestamp_micros;
  }
}

TailAnalysis AnalyzeTail(const Segment& segment, uint64_t bad_offset) {
  const auto bytes = segment.bytes();
  TailAnalysis t;
  t.nonzero_end = bad_offset;
  for (uint64_t off = bad_offset; off + 8 <= bytes.size(); off += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + off, 8);
    if (word == 0) continue;
    t.nonzero_end = off + 8;
    if (off == bad_offset || t.vouched_for) continue;
    // Cheap field checks first, so that garbage never costs a checksum over its claimed size.
    format::BatchHeader h;
    if (off + format::kBatchHeaderSize > bytes.size()) continue;
    std::memcpy(&h, bytes.data() + off, sizeof(h));
    if (h.segment_id != segment.id().value || h.kind != format::kBatchKindEvents ||
        h.sync_mark <= bad_offset || h.sync_mark > off) {
      continue;
    }
    if (format::CheckBatch(bytes.subspan(off), true, &h) == format::BatchCheck::kOk) {
      t.vouched_for = true;
    }
  }
  return t;
}

}  // namespace esd::storage
