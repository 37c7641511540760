#include "storage/segment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
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
  // A mapping past the end of the file would fault where it is read: map what there is.
  auto map = MappedFile::Map(*file, std::min<uint64_t>(*size, h.segment_size));
  if (!map.ok()) return map.status();
  std::unique_ptr<Segment> seg(new Segment());
  seg->path_ = path;
  seg->id_ = SegmentId(h.segment_id);
  seg->first_ = GlobalPosition(h.first_position);
  seg->verified_position_ = seg->first_;
  seg->declared_ = h.segment_size;
  seg->scavenged_end_ = GlobalPosition(h.scavenged_end_position);
  seg->file_ = std::move(file).value();
  seg->map_ = std::move(map).value();
  return seg;
}

Status Segment::ExtendToDeclaredSize() {
  if (!is_short()) return Status::Ok();
  Status s = file_.Truncate(declared_);
  if (s.ok()) s = file_.DataSync();
  if (!s.ok()) return s;
  auto map = MappedFile::Map(file_, declared_);
  if (!map.ok()) return map.status();
  map_ = std::move(map).value();
  return Status::Ok();
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
  // Map before the rename: once the file has its segment name, every step must succeed or
  // be undone, since a store that has <first>.seg must write on in it.
  auto map = MappedFile::Map(spare, size);
  if (!map.ok()) return map.status();
  const auto path = SegmentPath(segments_dir, first);
  s = RenameFile(spare_path, path);
  if (!s.ok()) return s;
  spare.Renamed(path);
  s = SyncDirectory(segments_dir);
  if (!s.ok()) {
    // Back to a temporary name, which the next open removes.
    std::filesystem::path back = spare_path;
    back.replace_extension(".tmp");
    if (RenameFile(path, back).ok()) (void)SyncDirectory(segments_dir);
    spare.Renamed(back);
    return s;
  }
  std::unique_ptr<Segment> seg(new Segment());
  seg->path_ = path;
  seg->id_ = id;
  seg->first_ = first;
  seg->verified_position_ = first;
  seg->declared_ = size;
  seg->file_ = std::move(spare);
  seg->map_ = std::move(map).value();
  return seg;
}

Status CreateSegmentFile(const std::filesystem::path& path, uint64_t size, uint64_t zero_prefix,
                         const std::atomic<bool>* cancel) {
  auto f = File::Open(path, O_RDWR | O_CREAT | O_TRUNC);
  if (!f.ok()) return f.status();
  zero_prefix = std::min(zero_prefix, size);
  // Synced every few MiB: filling 256 MiB and syncing once queued that much write-back
  // ahead of the writer's own fdatasync, which then stalled for ~100 ms (esbench p99.9).
  constexpr uint64_t kChunk = 1 << 20;
  constexpr uint64_t kSyncEvery = 8 << 20;
  Status s = f->Truncate(size);
  for (uint64_t off = 0; off < zero_prefix && s.ok(); off += kChunk) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) s = Status::Closed("cancelled");
    if (s.ok()) s = f->WriteZeros(off, std::min(kChunk, zero_prefix - off));
    if (s.ok() && (off + kChunk) % kSyncEvery == 0) s = f->DataSync();
  }
  if (s.ok()) s = f->DataSync();  // also the size: fdatasync commits what reading needs
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  return Status::Ok();
}

Status CreateZeroFilledFile(const std::filesystem::path& path, uint64_t size, const std::atomic<bool>* cancel) {
  return CreateSegmentFile(path, size, size, cancel);
}

namespace {

// ScanSegment over `window`, the segment's bytes from file offset `base` on (all of its
// mapping, or a copy of a part of it); every offset is the file's. What lies past the
// window reads as the end of the file.
ScanResult ScanWindow(const Segment& segment, std::span<const uint8_t> window, uint64_t base, uint64_t offset,
                      GlobalPosition first, TimestampMicros min_timestamp,
                      const std::function<void(const ScannedBatch&)>& on_batch, const BatchJudge& judge,
                      uint64_t stop_at) {
  // bytes.subspan(x) stands for the file from offset x (x >= base).
  struct Bytes {
    std::span<const uint8_t> window;
    uint64_t base;
    uint64_t size() const { return base + window.size(); }
    std::span<const uint8_t> subspan(uint64_t off) const { return window.subspan(off - base); }
    std::span<const uint8_t> subspan(uint64_t off, uint64_t n) const { return window.subspan(off - base, n); }
  } bytes{window, base};
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
  while (r.end_offset < stop_at) {
    format::BatchHeader h;
    auto check = format::CheckBatch(bytes.subspan(std::min<uint64_t>(r.end_offset, bytes.size())), true, &h);
    if (check == format::BatchCheck::kEndOfLog) {
      // Zeros, but fewer than a batch header of them, and then the end of a short file: the
      // file was cut by something else (esd makes every segment at its full length, and a
      // backup's copy ends at a batch) where no batch ends. Those zeros may be the first
      // bytes of a batch's header (its checksum's low byte is 0 once in 256 batches): a cut
      // inside a batch, judged as such, never read as the end of the log.
      const uint64_t left = r.end_offset < bytes.size() ? bytes.size() - r.end_offset : 0;
      if (segment.is_short() && bytes.size() == segment.size() && left > 0 && left < format::kBatchHeaderSize) {
        r.past_end_of_file = true;
        return fail(format::BatchCheckName(format::BatchCheck::kTruncated));
      }
      // A scavenged segment's positions go on to where it ended before the removal.
      if (segment.scavenged() && r.end_position < segment.scavenged_end()) r.end_position = segment.scavenged_end();
      return r;
    }
    if (check != format::BatchCheck::kOk) {
      r.past_end_of_file = check == format::BatchCheck::kTruncated && segment.is_short();
      return fail(format::BatchCheckName(check));
    }
    if (h.segment_id != segment.id().value) return fail("batch stamped with segment id " + std::to_string(h.segment_id));
    if (h.kind == format::kBatchKindTips) {
      if (!segment.scavenged()) return fail("a tips record in a segment that was not scavenged");
      const auto record = bytes.subspan(r.end_offset, h.batch_size);
      if (!format::ForEachTipsEntry(record, [](const format::TipsEntry&) {})) {
        return fail("the tips record does not parse");
      }
      r.tips_offset = r.end_offset;
      r.tips_record = record;
      r.end_offset += h.batch_size;
      r.intact = false;
      continue;
    }
    if ((h.kind & format::kKindSafeToIgnore) != 0 && h.kind != format::kBatchKindEvents) {
      r.end_offset += h.batch_size;  // a record kind from a newer version that may be skipped
      r.intact = false;
      continue;
    }
    // Dense, except in a scavenged segment, where removed events left holes.
    if (h.first_position != r.end_position.value &&
        !(segment.scavenged() && h.first_position > r.end_position.value)) {
      return fail("batch starts at position " + std::to_string(h.first_position) + ", expected " +
                  std::to_string(r.end_position.value));
    }
    if (h.timestamp_micros < r.last_timestamp) return fail("timestamp goes backwards");
    // A whole batch where the log continues: what fails from here on is no torn write (a
    // torn group leaves zeros or a bad checksum, and an orphan of one sits at a position
    // that does not follow), so it is damage wherever it is.
    r.intact = true;
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
    const ScannedBatch batch{r.end_offset, h, first_event.stream, first_event.version, offsets, segment.scavenged()};
    if (judge) {
      if (std::string why = judge(batch); !why.empty()) return fail(std::move(why));
    }
    r.intact = false;
    on_batch(batch);
    r.end_offset = batch_end;
    r.end_position = GlobalPosition(h.first_position) + h.event_count;
    r.last_timestamp = h.timestamp_micros;
  }
  return r;
}

}  // namespace

ScanResult ScanSegment(const Segment& segment, uint64_t offset, GlobalPosition first,
                       TimestampMicros min_timestamp,
                       const std::function<void(const ScannedBatch&)>& on_batch, const BatchJudge& judge,
                       uint64_t stop_at) {
  return ScanWindow(segment, segment.bytes(), 0, offset, first, min_timestamp, on_batch, judge, stop_at);
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

namespace esd::storage {

std::string SegmentFileName(const std::filesystem::path& path) { return "segments/" + path.filename().string(); }

Result<SegmentFiles> ListSegmentFiles(const std::filesystem::path& segments_dir) {
  SegmentFiles found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(segments_dir, ec)) {
    const auto& p = entry.path();
    if (p.extension() != ".seg") continue;
    const std::string stem = p.stem().string();
    uint64_t first = 0;
    auto [end, err] = std::from_chars(stem.data(), stem.data() + stem.size(), first);
    if (stem.size() != 20 || err != std::errc() || end != stem.data() + stem.size()) {
      found.misnamed.push_back(p);
    } else {
      found.files.emplace_back(GlobalPosition(first), p);
    }
  }
  if (ec) return Status::IOError("list " + segments_dir.string() + ": " + ec.message());
  std::sort(found.files.begin(), found.files.end());
  return found;
}

void Segment::MarkVerified(uint64_t end_offset, GlobalPosition end_position, TimestampMicros last_timestamp) const {
  std::lock_guard lock(verify_mu_);
  if (end_offset <= verified_offset_.load(std::memory_order_relaxed)) return;
  verified_position_ = end_position;
  verified_timestamp_ = last_timestamp;
  verified_offset_.store(end_offset, std::memory_order_release);
}

namespace {

// The next intact batch of `segment` after a damaged one at `bad`, below `limit`: a header
// whose fields fit (this segment, a known kind, a position past `min_position`, a sync mark
// that lies behind it) and whose checksum holds. Cheap checks first, so garbage never costs
// a checksum over its claimed size.
std::optional<std::pair<uint64_t, format::BatchHeader>> NextIntactBatch(const Segment& segment, uint64_t bad,
                                                                        uint64_t limit, uint64_t min_position) {
  const auto bytes = segment.bytes().subspan(0, std::min<uint64_t>(limit, segment.size()));
  for (uint64_t off = bad + format::kAlignment; off + format::kBatchHeaderSize <= bytes.size(); off += format::kAlignment) {
    format::BatchHeader h;
    std::memcpy(&h, bytes.data() + off, sizeof(h));
    if (h.segment_id != segment.id().value || h.kind != format::kBatchKindEvents || h.first_position < min_position ||
        h.sync_mark > off || h.batch_size > bytes.size() - off) {
      continue;
    }
    if (format::CheckBatch(bytes.subspan(off), true, &h) == format::BatchCheck::kOk) return std::pair(off, h);
  }
  return std::nullopt;
}

}  // namespace

void Segment::AdvanceVerified(uint64_t upto, uint64_t limit, std::atomic<uint64_t>* found) const {
  upto = std::min(upto, limit);
  while (verified_offset_.load(std::memory_order_relaxed) < upto) {
    const uint64_t from = verified_offset_.load(std::memory_order_relaxed);
    // Scan on to `upto`; a batch that straddles it is checked whole, so the watermark always
    // sits on a batch boundary.
    ScanResult r = ScanSegment(*this, from, verified_position_, verified_timestamp_, [](const ScannedBatch&) {}, {}, upto);
    if (r.end_offset >= upto && r.clean) {
      verified_position_ = r.end_position;
      verified_timestamp_ = r.last_timestamp;
      verified_offset_.store(r.end_offset, std::memory_order_release);
      return;
    }
    // A bad batch (or zeros) where the published log says there are batches.
    const uint64_t bad = r.end_offset;
    auto next = NextIntactBatch(*this, bad, limit, r.end_position.value);
    const uint64_t resume = next ? next->first : limit;
    damages_.push_back({bad, resume, next ? GlobalPosition(next->second.first_position) : GlobalPosition(),
                        next.has_value(),
                        Status::Damaged({SegmentFileName(path_), bad, r.end_position.value},
                                        (r.clean ? std::string("zeros where the log should continue") : r.problem) +
                                            ": this batch does not verify and is not served")});
    has_damage_.store(true, std::memory_order_release);
    if (found != nullptr) found->fetch_add(1, std::memory_order_relaxed);
    if (next) {
      verified_position_ = GlobalPosition(next->second.first_position);
      verified_timestamp_ = next->second.timestamp_micros;
    }
    verified_offset_.store(resume, std::memory_order_release);
  }
}

Status Segment::Verify(uint64_t offset, uint64_t limit, std::atomic<uint64_t>* found) const {
  if (verified_offset_.load(std::memory_order_acquire) > offset && !has_damage_.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  std::lock_guard lock(verify_mu_);
  AdvanceVerified(offset + 1, limit, found);
  for (const Damage& d : damages_) {
    if (offset >= d.begin && offset < d.end) return d.status;
  }
  return Status::Ok();
}

Status Segment::VerifyCopy(uint64_t offset, uint64_t limit, std::span<const uint8_t> copy, uint64_t copy_offset,
                           std::atomic<uint64_t>* found) const {
  if (verified_offset_.load(std::memory_order_acquire) > offset && !has_damage_.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  {
    std::lock_guard lock(verify_mu_);
    const uint64_t from = verified_offset_.load(std::memory_order_relaxed);
    const uint64_t upto = std::min(offset + 1, limit);
    if (from < upto && from >= copy_offset && !has_damage_.load(std::memory_order_relaxed)) {
      // The same checks as AdvanceVerified, on the copy. Only a clean pass counts: anything
      // else (a batch that goes on past the copy, or one that is wrong) is left to Verify
      // below, which reads the mapping and records damage.
      const auto window = copy.subspan(0, std::min<uint64_t>(copy.size(), limit - copy_offset));
      ScanResult r = ScanWindow(*this, window, copy_offset, from, verified_position_, verified_timestamp_,
                                [](const ScannedBatch&) {}, {}, upto);
      if (r.clean && r.end_offset >= upto) {
        verified_position_ = r.end_position;
        verified_timestamp_ = r.last_timestamp;
        verified_offset_.store(r.end_offset, std::memory_order_release);
        return Status::Ok();
      }
    }
  }
  return Verify(offset, limit, found);
}

std::optional<std::pair<uint64_t, GlobalPosition>> Segment::ResumeAfterDamage(uint64_t offset) const {
  std::lock_guard lock(verify_mu_);
  for (const Damage& d : damages_) {
    if (offset >= d.begin && offset < d.end && d.resumes) return std::pair(d.end, d.end_position);
  }
  return std::nullopt;
}

Status Segment::VerifyAll(uint64_t limit, std::atomic<uint64_t>* found) const {
  std::lock_guard lock(verify_mu_);
  AdvanceVerified(limit, limit, found);
  for (const Damage& d : damages_) {
    if (d.begin < limit) return d.status;
  }
  return Status::Ok();
}

SegmentVerdict JudgeSegment(const Segment& segment, bool last_segment,
                            const std::function<void(const ScannedBatch&)>& on_batch, const BatchJudge& judge) {
  SegmentVerdict v;
  v.scan = ScanSegment(segment, format::kSegmentHeaderSize, segment.first_position(), 0, on_batch, judge);
  const ScanResult& r = v.scan;
  if (r.clean) return v;
  v.kind = SegmentVerdict::Kind::kDamaged;
  v.problem = r.problem;
  if (!last_segment) {
    v.problem += " in a sealed segment";
  } else if (r.intact) {
    v.problem += " (the batch is whole: its checksum holds)";
  } else if (r.past_end_of_file) {
    v.problem += ": the file is " + std::to_string(segment.size()) + " bytes, its header says " +
                 std::to_string(segment.declared_size()) + "; something cut it short inside a batch";
  } else if (TailAnalysis t = AnalyzeTail(segment, r.end_offset); t.vouched_for) {
    v.problem += ", and a later intact batch shows it had been durable (acknowledged)";
  } else {
    v.kind = SegmentVerdict::Kind::kTornTail;
    v.cut_bytes = t.nonzero_end - r.end_offset;
  }
  return v;
}

std::string TornTailNote(const Segment& segment, const SegmentVerdict& v) {
  return SegmentFileName(segment.path()) + " offset " + std::to_string(v.scan.end_offset) + " (position " +
         std::to_string(v.scan.end_position.value) + "): " + v.problem +
         ", and no later batch shows it had been durable: a write torn by a crash (never acknowledged), or "
         "damage to the last batch acknowledged. Open cuts the log there: " +
         std::to_string(v.cut_bytes) + " bytes";
}

std::string NextVersions::Check(const ScannedBatch& b) const {
  auto it = next_.find(b.stream);
  const StreamVersion want = it == next_.end() ? StreamVersion(0) : it->second;
  return VersionContinues(b.first_version, want, b.in_scavenged_segment) ? std::string()
                                                                          : VersionGapProblem(b.stream, b.first_version, want);
}

void NextVersions::RecordTips(const ScanResult& scan) {
  if (scan.tips_record.empty()) return;
  (void)format::ForEachTipsEntry(scan.tips_record, [&](const format::TipsEntry& e) {
    auto& next = next_[std::string(e.stream)];
    next = std::max(next, e.last_version + 1);
  });
}

std::string VersionGapProblem(std::string_view stream, StreamVersion found, StreamVersion expected) {
  return "stream '" + std::string(stream) + "' continues at version " + std::to_string(found.value) + ", expected " +
         std::to_string(expected.value);
}

}  // namespace esd::storage
