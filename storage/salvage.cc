#include "storage/salvage.h"

#include <fcntl.h>

#include <ctime>
#include <string>

#include "storage/file.h"
#include "storage/index_file.h"
#include "storage/mem_index.h"
#include "storage/segment.h"
#include "storage/store.h"

namespace esd::storage {

namespace {

// Where the log first goes wrong: segment `index` of the listing, from byte `offset` on (0:
// the whole file, header and all).
struct Cut {
  size_t index = 0;
  uint64_t offset = 0;
  std::optional<uint64_t> position;
  std::string problem;
  bool short_file = false;  // the segment is shorter than its header says (Segment::is_short)
};

struct Walk {
  std::optional<Cut> cut;
  GlobalPosition log_end;  // at the cut, or the end of the log
  uint64_t events = 0;
};

// The same rules as recovery (storage/recovery.cc) and verify: headers, segments that join
// up, JudgeSegment, and stream versions that stay dense along the whole log.
Walk FindFirstDamage(const std::vector<std::pair<GlobalPosition, std::filesystem::path>>& files,
                     const SalvageOptions& options) {
  Walk w;
  std::error_code ec;
  uint64_t total = 0, done = 0;
  for (const auto& [first, path] : files) total += std::filesystem::file_size(path, ec);
  NextVersions next_version;
  auto cut = [&](size_t k, uint64_t offset, std::optional<uint64_t> position, std::string problem,
                 bool short_file = false) {
    w.cut = Cut{k, offset, position, std::move(problem), short_file};
    return w;
  };
  for (size_t k = 0; k < files.size(); ++k) {
    auto seg = Segment::OpenReadOnly(files[k].second);
    if (!seg.ok()) return cut(k, 0, w.log_end.value, seg.status().message());
    const Segment& s = **seg;
    if (s.id().value != k || s.first_position() != w.log_end || s.first_position() != files[k].first) {
      return cut(k, 0, w.log_end.value,
                 "is segment " + std::to_string(s.id().value) + " from position " +
                     std::to_string(s.first_position().value) + ", but the log before it ends at " +
                     std::to_string(w.log_end.value) + " in segment " + std::to_string(k));
    }
    const bool last = k + 1 == files.size();
    SegmentVerdict v = JudgeSegment(
        s, last,
        [&](const ScannedBatch& b) {
          next_version.Record(b);
          w.events += b.header.event_count;
          if (options.progress && w.events % 4096 == 0) options.progress(done + b.offset, total);
        },
        [&](const ScannedBatch& b) { return next_version.Check(b); });
    next_version.RecordTips(v.scan);
    w.log_end = v.scan.end_position;
    if (v.kind == SegmentVerdict::Kind::kDamaged) {
      return cut(k, v.scan.end_offset, v.scan.end_position.value, v.problem, s.is_short());
    }
    done += std::filesystem::file_size(files[k].second, ec);
  }
  return w;
}

std::filesystem::path NewQuarantine(const std::filesystem::path& dir) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  std::filesystem::path q = dir / "quarantine" / stamp;
  std::error_code ec;
  for (int n = 2; std::filesystem::exists(q, ec); ++n) q = dir / "quarantine" / (std::string(stamp) + "-" + std::to_string(n));
  return q;
}

std::string Describe(const SalvageReport& r) {
  std::string text = "esctl salvage moved these files out of the log, because the log is damaged at " +
                     r.damage->ToString() + ":\n  " + r.problem + "\n\n";
  for (const auto& m : r.moved) text += "  " + m + "\n";
  text += "\nThe log now ends at position " + std::to_string(r.log_end.value) +
          ". Segment files here are byte-for-byte copies as they were found; nothing was deleted.\n";
  return text;
}

}  // namespace

Result<SalvageReport> SalvageStore(const std::filesystem::path& dir, const SalvageOptions& options) {
  const auto segments_dir = dir / "segments";
  auto listed = ListSegmentFiles(segments_dir);
  if (!listed.ok() || listed->files.empty()) {
    return Status::NotFound(dir.string() + " holds no store (no segments/*.seg)");
  }
  std::error_code ec;
  if (std::filesystem::exists(dir / kBackupInProgressFile, ec)) {
    return Status::InvalidArgument(dir.string() + " holds an unfinished backup (" + kBackupInProgressFile +
                                   "): salvage cannot complete a copy that was interrupted. Take the backup again");
  }
  if (!listed->misnamed.empty()) {
    return Status::InvalidArgument(listed->misnamed.front().string() +
                                   ": not a segment name (20 digits expected). esd did not make this file: move "
                                   "it out of " + segments_dir.string() + " and run salvage again");
  }
  auto lock = DirectoryLock::Acquire(dir);
  if (!lock.ok()) return lock.status();
  const auto& files = listed->files;

  Walk w = FindFirstDamage(files, options);
  SalvageReport report;
  report.log_end = w.log_end;
  report.events_before = w.events;
  if (!w.cut) return report;
  const Cut& cut = *w.cut;
  const auto& damaged = files[cut.index].second;
  report.damage = DamageLocation{SegmentFileName(damaged), cut.offset, cut.position};
  report.problem = cut.problem;
  report.quarantine = NewQuarantine(dir);
  report.log_end = GlobalPosition(cut.position.value_or(files[cut.index].first.value));
  const bool whole = cut.offset <= format::kSegmentHeaderSize;  // nothing good is left in it
  for (size_t k = cut.index; k < files.size(); ++k) {
    report.bytes_moved += std::filesystem::file_size(files[k].second, ec) - (k == cut.index && !whole ? cut.offset : 0);
  }
  // What moves: the damaged segment (as a copy, unless all of it goes), every later one, and
  // the index files of all of these (the damaged one's describes an end that is gone).
  std::vector<std::filesystem::path> to_move;
  for (size_t k = cut.index; k < files.size(); ++k) {
    if (k > cut.index || whole) to_move.push_back(files[k].second);
    const auto idx = IndexPath(segments_dir, files[k].first);
    if (std::filesystem::exists(idx, ec)) to_move.push_back(idx);
  }
  if (!whole) report.moved.push_back(SegmentFileName(damaged) + " (a copy; the original keeps its first " +
                                     std::to_string(cut.offset) + " bytes)");
  for (const auto& p : to_move) report.moved.push_back(SegmentFileName(p));
  if (options.dry_run) return report;

  // 1. The quarantine and the copies, durable before the log changes.
  if (Status s = CreateDirectoriesDurably(report.quarantine); !s.ok()) return s;
  if (!whole) {
    if (Status s = CopyFileDurably(damaged, report.quarantine / damaged.filename(), options.progress); !s.ok()) return s;
  }
  const std::string readme = Describe(report);
  if (Status s = WriteFileAtomically(report.quarantine / "SALVAGE.txt",
                                     std::span(reinterpret_cast<const uint8_t*>(readme.data()), readme.size()));
      !s.ok()) {
    return s;
  }
  // 2. Later files out of the log: renames within the data directory's filesystem.
  for (const auto& p : to_move) {
    if (Status s = RenameFile(p, report.quarantine / p.filename()); !s.ok()) return s;
  }
  if (Status s = SyncDirectory(report.quarantine); !s.ok()) return s;
  if (Status s = SyncDirectory(segments_dir); !s.ok()) return s;
  // 3. The damaged segment ends before the bad batch: zeros from there, as open expects. A
  // file shorter than its header says (cut by something else) ends there instead, as a
  // backup's copy of the active segment does, and open gives it its length back: fewer
  // zeros than a batch header at the end of a short file read as a cut again.
  if (!whole) {
    auto f = File::Open(damaged, O_RDWR);
    if (!f.ok()) return f.status();
    auto size = f->Size();
    if (!size.ok()) return size.status();
    Status s = cut.short_file ? f->Truncate(cut.offset) : f->WriteZeros(cut.offset, *size - cut.offset);
    if (s.ok()) s = f->DataSync();
    if (!s.ok()) return s;
  }
  return report;
}

}  // namespace esd::storage
