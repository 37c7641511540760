// Opening a store: find the segments, check that they join up, rebuild missing or damaged
// index files of sealed segments, and scan the active (last) segment, cutting off a torn
// tail. Cost: the active segment's bytes, plus one index file's header and tips per sealed
// segment; sealed segments themselves are read only when their index must be rebuilt.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "storage/scavenge.h"
#include "storage/store_impl.h"

namespace esd::storage {

namespace {

std::string Where(const Segment& s, uint64_t offset) {
  return SegmentFileName(s.path()) + " offset " + std::to_string(offset);
}

}  // namespace

Store::Impl::Impl(std::filesystem::path dir, Options options, DirectoryLock lock)
    : dir_(std::move(dir)),
      segments_dir_(dir_ / "segments"),
      options_(options),
      lock_(std::move(lock)),
      directory_([this] { return NewestIndexNames(); }) {
  // The id window's first generation gets all its buckets now, as every later one does when
  // it starts (RememberBatch): growing into them rehashed up to 2^20 entries on the writer
  // thread, which stalled every append in flight for 10-65 ms at each doubling.
  ids_.reserve(kIdWindow);
}

Store::Impl::~Impl() = default;

Status Store::Impl::Recover() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(segments_dir_, ec)) {
    // An unused spare, an index file half written, or what a scavenge interrupted by a crash
    // left: a rewritten segment or index not yet renamed into place (never used: the swap
    // renames the segment only once it and its index are durable), or a retired segment
    // kept for recycling (storage/scavenge.h).
    const auto ext = entry.path().extension();
    if (ext == ".tmp" || ext == ".scav" || ext == ".retired") std::filesystem::remove(entry.path(), ec);
  }
  auto listed = ListSegmentFiles(segments_dir_);
  if (!listed.ok()) return listed.status();
  if (!listed->misnamed.empty()) {
    return Status::Corruption(listed->misnamed.front().string() +
                              ": not a segment name (20 digits expected); esd did not make this file: move it out of " +
                              segments_dir_.string());
  }
  auto& found = listed->files;

  if (found.empty()) {  // a new store: its first segment, made the same way as every other
    const auto spare = segments_dir_ / "spare-initial.tmp";
    // Like every spare: full length, its first fill_ahead bytes zero-filled; the
    // Preallocator fills on ahead of the writer.
    Status s = CreateSegmentFile(spare, options_.segment_size, options_.fill_ahead);
    if (!s.ok()) return s;
    auto f = File::Open(spare, O_RDWR);
    if (!f.ok()) return f.status();
    auto seg = Segment::Activate(std::move(f).value(), spare, segments_dir_, SegmentId(0), GlobalPosition(0),
                                 options_.segment_size);
    if (!seg.ok()) return seg.status();
    found.emplace_back(GlobalPosition(0), (*seg)->path());
    created_filled_ = std::min(options_.fill_ahead, options_.segment_size);
  }

  // What the operator can do about damage before the end of the log.
  const std::string remedy = ". The store will not open past damaged data: run 'esctl salvage --data-dir " +
                             dir_.string() + "' to move it and everything after it aside (nothing is deleted), or "
                             "restore the data directory from a backup";
  auto damaged = [&](const Segment& seg, const ScanResult& r, const std::string& problem) {
    return Status::Damaged({SegmentFileName(seg.path()), r.end_offset, r.end_position.value}, problem + remedy);
  };
  // Versions of a stream are dense along the whole log: a batch of segment k continues
  // where its stream stood at the end of the segments before (their tips) or earlier in k.
  auto expected_version = [&](size_t k, const MemIndex* mem, std::string_view stream) {
    if (mem != nullptr) {
      if (auto run = mem->Find(stream)) return run->last_version() + 1;
    }
    auto tip = k > 0 ? SealedTipLocked(k - 1, stream) : std::nullopt;
    return tip ? tip->last_version + 1 : StreamVersion(0);
  };
  auto continuity = [&](size_t k, const MemIndex* mem) -> BatchJudge {
    return [&, k, mem](const ScannedBatch& b) -> std::string {
      const StreamVersion want = expected_version(k, mem, b.stream);
      return VersionContinues(b.first_version, want, b.in_scavenged_segment)
                 ? std::string()
                 : VersionGapProblem(b.stream, b.first_version, want);
    };
  };

  GlobalPosition expected_first(0);
  for (size_t k = 0; k < found.size(); ++k) {
    // A segment that cannot be read, or that does not join the log: damage at its start.
    auto whole_segment = [&](const std::string& problem) {
      return Status::Damaged({SegmentFileName(found[k].second), 0, expected_first.value}, problem + remedy);
    };
    auto seg = Segment::Open(found[k].second);
    if (!seg.ok()) {
      if (seg.status().code() != Status::Code::kCorruption) return seg.status();
      return whole_segment(seg.status().message());
    }
    Segment& s = **seg;
    if (s.id().value != k || s.first_position() != found[k].first) {
      return whole_segment("header says segment " + std::to_string(s.id().value) + " from position " +
                           std::to_string(s.first_position().value) + ", expected segment " + std::to_string(k) +
                           " (a segment file is missing?)");
    }
    if (s.first_position() != expected_first) {
      return whole_segment("starts at position " + std::to_string(s.first_position().value) +
                           " but the segment before ends at " + std::to_string(expected_first.value));
    }
    auto slot = std::make_unique<SegmentSlot>();
    slot->segment = std::move(seg).value();
    const bool last = k + 1 == found.size();
    if (!last) {
      slot->sealed = true;
      const auto idx_path = IndexPath(segments_dir_, s.first_position());
      auto idx = IndexFile::Load(idx_path, s.id(), s.first_position(), s.size());
      if (idx.ok()) {
        // The index is trusted for where things are (reads still verify every batch), but
        // not for whether streams continue: that is checked against the segments before.
        std::string gap;
        (*idx)->ForEachRun([&](std::string_view stream, const StreamRun& run) {
          const StreamVersion want = expected_version(k, nullptr, stream);
          if (gap.empty() && !VersionContinues(run.first_version, want, s.scavenged())) {
            gap = Where(s, run.offsets[0]) + ": " + VersionGapProblem(stream, run.first_version, want);
          }
        });
        if (!gap.empty()) return Status::Corruption(gap + " (according to " + SegmentFileName(idx_path) + ")" + remedy);
        slot->idx = std::move(idx).value();
        slot->end_offset = slot->idx->end_offset();
        slot->end_position = slot->idx->end_position();
      } else {
        recovery_.notes.push_back(IndexRebuildNote(SegmentFileName(idx_path), idx.status()));
        // Rebuild from the segment. A sealed segment was durable before the next began, so
        // any bad batch in it is damage, never a torn tail.
        auto mem = std::make_shared<MemIndex>();
        SegmentVerdict v = JudgeSegment(s, false, [&](const ScannedBatch& b) {
          mem->AddBatch(b.stream, b.first_version, GlobalPosition(b.header.first_position),
                        b.header.timestamp_micros, b.offset, b.header.batch_size, b.event_offsets);
        }, continuity(k, mem.get()));
        if (v.kind != SegmentVerdict::Kind::kClean) return damaged(s, v.scan, v.problem);
        slot->end_offset = v.scan.end_offset;
        slot->end_position = v.scan.end_position;
        s.MarkVerified(v.scan.end_offset, v.scan.end_position, v.scan.last_timestamp);
        const IndexFile* previous = k > 0 ? segments_[k - 1]->idx.get() : nullptr;
        // A scavenged segment's tips record keeps the tips of the streams it lost entirely.
        std::vector<format::TipsEntry> tips;
        (void)format::ForEachTipsEntry(v.scan.tips_record, [&](const format::TipsEntry& e) { tips.push_back(e); });
        Status w = previous != nullptr || k == 0
                       ? IndexFile::Write(idx_path, s.id(), s.first_position(), v.scan.end_position,
                                          v.scan.end_offset, *mem, previous, tips)
                       : Status::IOError("the index before it is not written either");
        auto loaded = w.ok() ? IndexFile::Load(idx_path, s.id(), s.first_position(), s.size())
                             : Result<std::unique_ptr<IndexFile>>(w);
        if (loaded.ok()) {
          slot->idx = std::move(loaded).value();
          ++recovery_.index_files_rebuilt;
        } else {
          // A full disk must not keep the store from opening: serve from memory, and let the
          // index job write the file once the store runs (WriteIndexFor retries in order).
          slot->mem = std::move(mem);
          unindexed_at_open_.push_back(k);
        }
      }
    }
    expected_first = slot->end_position;
    segments_.push_back(std::move(slot));
  }

  // The active segment: scan and verify everything in it.
  SegmentSlot& active = *segments_.back();
  Segment& seg = *active.segment;
  active.mem = std::make_shared<MemIndex>();
  auto on_batch = [&](const ScannedBatch& b) {
    active.mem->AddBatch(b.stream, b.first_version, GlobalPosition(b.header.first_position),
                         b.header.timestamp_micros, b.offset, b.header.batch_size, b.event_offsets);
    format::EventView first;
    uint32_t size;
    (void)format::ParseEvent(seg.bytes().subspan(b.event_offsets[0]), &first, &size);
    RememberBatch(first.id, GlobalPosition(b.header.first_position), b.header.event_count);
  };
  SegmentVerdict v = JudgeSegment(seg, true, on_batch, continuity(segments_.size() - 1, active.mem.get()));
  const ScanResult& r = v.scan;
  if (v.kind == SegmentVerdict::Kind::kDamaged) return damaged(seg, r, v.problem);
  if (v.kind == SegmentVerdict::Kind::kTornTail) {
    recovery_.torn_bytes_discarded = v.cut_bytes;
    recovery_.torn_at = FileOffset(r.end_offset);
    recovery_.notes.push_back(TornTailNote(seg, v));
    // Zero what follows the last good batch so the log ends there (synced just below).
    Status s = seg.file().WriteZeros(r.end_offset, v.cut_bytes);
    if (!s.ok()) return s;
  }
  // A backup's copy of this segment ends at its last batch: make the file whole to write on.
  if (Status s = seg.ExtendToDeclaredSize(); !s.ok()) return s;
  active.end_offset = r.end_offset;
  active.end_position = r.end_position;
  seg.MarkVerified(r.end_offset, r.end_position, r.last_timestamp);
  recovery_.tail_bytes_scanned = r.end_offset;

  // What the scan read may so far be only in the page cache (a process crash loses none of
  // it): make it durable before anything new is written after it.
  Status s = seg.file().DataSync();
  if (!s.ok()) return s;

  active.mem->ForEachStream([&](std::string_view name, const StreamRun& run) {
    auto [it, added] = streams_.TryEmplace(name,
                                            StreamTip{run.last_version(), run.last_position, run.last_timestamp});
    if (added) directory_.Add(it->first);
  });
  // The directory's base is the newest index file: a stream only in a sealed segment whose
  // index file could not be written is in no index file's tips. Its MemIndex goes once the
  // file is written, hence copies. Bounded by what this open scanned.
  for (size_t k : unindexed_at_open_) {
    segments_[k]->mem->ForEachStream([&](std::string_view name, const StreamRun&) { directory_.AddCopy(name); });
  }

  // The last batch's timestamp: in the active segment, or the newest sealed tip.
  last_timestamp_ = r.last_timestamp;
  if (last_timestamp_ == 0 && segments_.size() > 1) {
    const Segment& prev = *segments_[segments_.size() - 2]->segment;
    const SegmentSlot& prev_slot = *segments_[segments_.size() - 2];
    if (prev_slot.end_offset > format::kSegmentHeaderSize) {
      auto floor = prev_slot.idx ? prev_slot.idx->SparseFloor(prev_slot.end_position - 1)
                                 : prev_slot.mem->SparseFloor(prev_slot.end_position - 1);
      uint64_t off = floor ? floor->offset : format::kSegmentHeaderSize;
      format::BatchHeader h;
      while (off < prev_slot.end_offset &&
             format::CheckBatch(prev.bytes().subspan(off), true, &h) == format::BatchCheck::kOk) {  // a damaged time would carry forward
        last_timestamp_ = h.timestamp_micros;
        off += h.batch_size;
      }
    }
  }

  sealed_at_open_ = segments_.size() - 1;
  write_offset_ = active.end_offset;
  // How much past the log's end is known to be synced zeros: all of a new store's first
  // fill; of an existing store nothing beyond the end (an earlier run's fill ahead is not
  // recorded), so the Preallocator writes it again before the writer goes there.
  active_filled_ = std::max(created_filled_, write_offset_);
  sync_mark_ = active.end_offset;
  next_position_ = active.end_position;
  durable_.store(active.end_position.value, std::memory_order_release);
  synced_.store(active.end_position.value, std::memory_order_release);
  recovery_.segments = segments_.size();
  recovery_.end_position = active.end_position;
  return Status::Ok();
}

}  // namespace esd::storage
