// Opening a store: find the segments, check that they join up, rebuild missing or damaged
// index files of sealed segments, and scan the active (last) segment, cutting off a torn
// tail. Cost: the active segment's bytes, plus one index file's header and tips per sealed
// segment; sealed segments themselves are read only when their index must be rebuilt.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "storage/store_impl.h"

namespace esd::storage {

namespace {

std::optional<uint64_t> ParsePositionName(const std::filesystem::path& p) {
  const std::string stem = p.stem().string();
  if (stem.size() != 20) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(stem.data(), stem.data() + stem.size(), v);
  if (ec != std::errc() || ptr != stem.data() + stem.size()) return std::nullopt;
  return v;
}

std::string Where(const Segment& s, uint64_t offset) {
  return "segment " + s.path().filename().string() + " offset " + std::to_string(offset);
}

}  // namespace

Store::Impl::Impl(std::filesystem::path dir, Options options, DirectoryLock lock)
    : dir_(std::move(dir)), segments_dir_(dir_ / "segments"), options_(options), lock_(std::move(lock)) {}

Store::Impl::~Impl() = default;

Status Store::Impl::Recover() {
  std::vector<std::pair<uint64_t, std::filesystem::path>> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(segments_dir_, ec)) {
    const auto& p = entry.path();
    if (p.extension() == ".tmp") {
      std::filesystem::remove(p, ec);  // an unused spare, or an index file half written
    } else if (p.extension() == ".seg") {
      auto pos = ParsePositionName(p);
      if (!pos) return Status::Corruption(p.string() + ": not a segment name (20 digits expected)");
      found.emplace_back(*pos, p);
    }
  }
  if (ec) return Status::IOError("list " + segments_dir_.string() + ": " + ec.message());
  std::sort(found.begin(), found.end());

  if (found.empty()) {  // a new store: its first segment, made the same way as every other
    const auto spare = segments_dir_ / "spare-initial.tmp";
    Status s = CreateZeroFilledFile(spare, options_.segment_size);
    if (!s.ok()) return s;
    auto f = File::Open(spare, O_RDWR);
    if (!f.ok()) return f.status();
    auto seg = Segment::Activate(std::move(f).value(), spare, segments_dir_, SegmentId(0), GlobalPosition(0),
                                 options_.segment_size);
    if (!seg.ok()) return seg.status();
    found.emplace_back(0, (*seg)->path());
  }

  GlobalPosition expected_first(0);
  for (size_t k = 0; k < found.size(); ++k) {
    auto seg = Segment::Open(found[k].second);
    if (!seg.ok()) return seg.status();
    Segment& s = **seg;
    if (s.id().value != k || s.first_position().value != found[k].first) {
      return Status::Corruption(s.path().string() + ": header says segment " + std::to_string(s.id().value) +
                                " from position " + std::to_string(s.first_position().value) +
                                ", expected segment " + std::to_string(k) + " (a segment file is missing?)");
    }
    if (s.first_position() != expected_first) {
      return Status::Corruption(s.path().string() + " starts at position " + std::to_string(s.first_position().value) +
                                " but the segment before ends at " + std::to_string(expected_first.value));
    }
    auto slot = std::make_unique<SegmentSlot>();
    slot->segment = std::move(seg).value();
    const bool last = k + 1 == found.size();
    if (!last) {
      slot->sealed = true;
      const auto idx_path = IndexPath(segments_dir_, s.first_position());
      auto idx = IndexFile::Load(idx_path, s.id(), s.first_position());
      if (idx.ok()) {
        slot->idx = std::move(idx).value();
        slot->end_offset = slot->idx->end_offset();
        slot->end_position = slot->idx->end_position();
      } else {
        // Rebuild from the segment. A sealed segment was durable before the next began, so
        // any bad batch in it is corruption, never a torn tail.
        auto mem = std::make_shared<MemIndex>();
        ScanResult r = ScanSegment(s, format::kSegmentHeaderSize, s.first_position(), 0, [&](const ScannedBatch& b) {
          mem->AddBatch(b.stream, b.first_version, GlobalPosition(b.header.first_position),
                        b.header.timestamp_micros, b.offset, b.header.batch_size, b.event_offsets);
        });
        if (!r.clean) {
          return Status::Corruption(Where(s, r.end_offset) + " (position " + std::to_string(r.end_position.value) +
                                    "): " + r.problem + " in a sealed segment");
        }
        slot->end_offset = r.end_offset;
        slot->end_position = r.end_position;
        const IndexFile* previous = k > 0 ? segments_[k - 1]->idx.get() : nullptr;
        Status w = IndexFile::Write(idx_path, s.id(), s.first_position(), r.end_position, r.end_offset, *mem, previous);
        auto loaded = w.ok() ? IndexFile::Load(idx_path, s.id(), s.first_position()) : Result<std::unique_ptr<IndexFile>>(w);
        if (!loaded.ok()) return loaded.status();
        slot->idx = std::move(loaded).value();
        ++recovery_.index_files_rebuilt;
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
  ScanResult r = ScanSegment(seg, format::kSegmentHeaderSize, seg.first_position(), 0, on_batch);
  if (!r.clean) {
    TailAnalysis t = AnalyzeTail(seg, r.end_offset);
    const std::string where = Where(seg, r.end_offset) + " (position " + std::to_string(r.end_position.value) + ")";
    if (t.vouched_for) {
      if (!options_.open_past_corruption) {
        return Status::Corruption(where + ": " + r.problem + ", and later batches were written after it was durable. "
                                  "The store will not open past acknowledged data that is damaged; restore the "
                                  "segment from a backup, or open with open_past_corruption to keep the events "
                                  "before it and move the rest aside");
      }
      const auto aside = seg.path().string() + ".corrupt-" + std::to_string(r.end_offset);
      Status s = WriteFileAtomically(aside, seg.bytes().subspan(r.end_offset, t.nonzero_end - r.end_offset));
      if (!s.ok()) return s;
      recovery_.corruption_moved_aside += where + ": " + r.problem + "; " +
                                          std::to_string(t.nonzero_end - r.end_offset) + " bytes moved to " + aside + "\n";
    } else {
      recovery_.torn_bytes_discarded = t.nonzero_end - r.end_offset;
      recovery_.torn_at = FileOffset(r.end_offset);
    }
    // Zero what follows the last good batch so the log ends there (synced just below).
    Status s = seg.file().WriteZeros(r.end_offset, t.nonzero_end - r.end_offset);
    if (!s.ok()) return s;
  }
  active.end_offset = r.end_offset;
  active.end_position = r.end_position;
  recovery_.tail_bytes_scanned = r.end_offset;

  // What the scan read may so far be only in the page cache (a process crash loses none of
  // it): make it durable before anything new is written after it.
  Status s = seg.file().DataSync();
  if (!s.ok()) return s;

  // Streams of the active segment: their run must continue where the sealed tips end.
  Status continuity;
  active.mem->ForEachStream([&](std::string_view name, const StreamRun& run) {
    auto before = segments_.size() > 1 ? SealedTipLocked(segments_.size() - 2, name) : std::nullopt;
    const uint64_t expected = before ? before->last_version.value + 1 : 0;
    if (run.first_version.value != expected && continuity.ok()) {
      continuity = Status::Corruption("stream '" + std::string(name) + "' continues at version " +
                                      std::to_string(run.first_version.value) + " in " +
                                      seg.path().filename().string() + ", expected " + std::to_string(expected));
    }
    streams_[std::string(name)] = StreamTip{run.last_version(), run.last_position, run.last_timestamp};
  });
  if (!continuity.ok()) return continuity;

  // The last batch's timestamp: in the active segment, or the newest sealed tip.
  last_timestamp_ = r.last_timestamp;
  if (last_timestamp_ == 0 && segments_.size() > 1) {
    const Segment& prev = *segments_[segments_.size() - 2]->segment;
    const SegmentSlot& prev_slot = *segments_[segments_.size() - 2];
    if (prev_slot.end_offset > format::kSegmentHeaderSize) {
      auto floor = prev_slot.idx->SparseFloor(prev_slot.end_position - 1);
      uint64_t off = floor ? floor->offset : format::kSegmentHeaderSize;
      format::BatchHeader h;
      while (off < prev_slot.end_offset &&
             format::CheckBatch(prev.bytes().subspan(off), false, &h) == format::BatchCheck::kOk) {
        last_timestamp_ = h.timestamp_micros;
        off += h.batch_size;
      }
    }
  }

  write_offset_ = active.end_offset;
  sync_mark_ = active.end_offset;
  next_position_ = active.end_position;
  durable_.store(active.end_position.value, std::memory_order_release);
  recovery_.segments = segments_.size();
  recovery_.end_position = active.end_position;
  return Status::Ok();
}

}  // namespace esd::storage
