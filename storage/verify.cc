#include "storage/verify.h"

#include <algorithm>
#include <charconv>
#include <string>

#include "storage/index_file.h"
#include "storage/mem_index.h"
#include "storage/segment.h"
#include "storage/store.h"

namespace esd::storage {

namespace {

std::string Rel(const std::filesystem::path& p) { return "segments/" + p.filename().string(); }

// The index file against what a scan of its segment found.
void CompareIndex(const IndexFile& idx, const MemIndex& scanned, const ScanResult& scan, const std::string& file,
                  std::vector<VerifyProblem>& problems) {
  auto problem = [&](std::string what) { problems.push_back({file, 0, std::nullopt, std::move(what)}); };
  if (idx.end_position() != scan.end_position || idx.end_offset() != scan.end_offset) {
    problem("says the segment ends at position " + std::to_string(idx.end_position().value) + " (offset " +
            std::to_string(idx.end_offset()) + "); the log ends at " + std::to_string(scan.end_position.value) +
            " (offset " + std::to_string(scan.end_offset) + ")");
  }
  if (idx.run_count() != scanned.stream_count()) {
    problem("lists " + std::to_string(idx.run_count()) + " streams; the segment holds " +
            std::to_string(scanned.stream_count()));
  }
  scanned.ForEachStream([&](std::string_view stream, const StreamRun& run) {
    auto in_idx = idx.Find(stream);
    if (!in_idx) return problem("has no entry for stream '" + std::string(stream) + "'");
    if (in_idx->first_version != run.first_version || !std::equal(in_idx->offsets.begin(), in_idx->offsets.end(),
                                                                   run.offsets.begin(), run.offsets.end())) {
      return problem("entry for stream '" + std::string(stream) + "' does not match the log");
    }
    auto tip = idx.Tip(stream);
    if (!tip || tip->last_version != run.last_version() || tip->last_position != run.last_position) {
      problem("tip of stream '" + std::string(stream) + "' does not match the log");
    }
  });
}

}  // namespace

Result<VerifyReport> VerifyStore(const std::filesystem::path& dir, const VerifyProgress& progress) {
  const auto segments_dir = dir / "segments";
  auto listed = ListSegmentFiles(segments_dir);
  if (!listed.ok() || listed->files.empty()) return Status::NotFound(dir.string() + " holds no store (no segments/*.seg)");
  const auto& found = listed->files;
  std::error_code ec;

  VerifyReport report;
  if (std::filesystem::exists(dir / kBackupInProgressFile, ec)) {
    report.problems.push_back({kBackupInProgressFile, 0, std::nullopt,
                               "an unfinished backup: the copy was interrupted and may lack the end of the log; "
                               "esd refuses to start on it. Take the backup again"});
  }
  for (const auto& p : listed->misnamed) {
    report.problems.push_back({Rel(p), 0, std::nullopt, "not a segment name (20 digits expected); esd refuses to start"});
  }
  // Progress counts bytes of log checked, never the zeros past its end (a rate over those
  // would be a rate of nothing): until a segment is scanned, its file size stands in for
  // its log in `total`, and once scanned its log replaces it.
  uint64_t total = 0, done = 0;
  for (const auto& [first, path] : found) total += std::filesystem::file_size(path, ec);
  std::optional<GlobalPosition> expected = GlobalPosition(0);  // nullopt: unknown after damage
  // Each stream's next version along the log, as recovery checks it (storage/recovery.cc).
  NextVersions next_version;
  bool versions_known = true;  // false after damage that no index file's tips get us past
  for (size_t k = 0; k < found.size(); ++k) {
    const std::string file = Rel(found[k].second);
    auto seg = Segment::OpenReadOnly(found[k].second);
    if (!seg.ok()) {
      report.problems.push_back({file, 0, std::nullopt, seg.status().message()});
      expected.reset();
      continue;
    }
    const Segment& s = **seg;
    ++report.segments;
    if (s.id().value != k) {
      report.problems.push_back({file, 0, std::nullopt, "is segment " + std::to_string(s.id().value) + ", expected " +
                                                            std::to_string(k) + " (a segment file is missing?)"});
    }
    if (expected && s.first_position() != *expected) {
      report.problems.push_back({file, 0, s.first_position().value,
                                 "starts at position " + std::to_string(s.first_position().value) +
                                     " but the log before it ends at " + std::to_string(expected->value)});
    }
    MemIndex scanned;
    const bool last = k + 1 == found.size();
    auto continues = [&](const ScannedBatch& b) { return versions_known ? next_version.Check(b) : std::string(); };
    SegmentVerdict v = JudgeSegment(s, last, [&](const ScannedBatch& b) {
      scanned.AddBatch(b.stream, b.first_version, GlobalPosition(b.header.first_position), b.header.timestamp_micros,
                       b.offset, b.header.batch_size, b.event_offsets);
      next_version.Record(b);
      ++report.batches;
      report.events += b.header.event_count;
      if (progress && report.batches % 4096 == 0) progress(done + b.offset, total);
    }, continues);
    const ScanResult& r = v.scan;
    next_version.RecordTips(r);
    report.bytes += r.end_offset;
    if (v.kind == SegmentVerdict::Kind::kTornTail) {
      report.torn_tail = TornTailNote(s, v);
      report.notes.push_back(*report.torn_tail);
    } else if (v.kind == SegmentVerdict::Kind::kDamaged) {
      report.problems.push_back({file, r.end_offset, r.end_position.value, v.problem});
    }
    // Where the next segment must start: where this one's log ends, or, when damage
    // stopped the scan early, where its index file says it ends (else: unknown).
    expected = r.clean ? std::optional(r.end_position) : std::nullopt;
    if (!last) {
      const auto idx_path = IndexPath(segments_dir, s.first_position());
      auto idx = IndexFile::Load(idx_path, s.id(), s.first_position(), s.size());
      if (!idx.ok()) {
        // Open rebuilds an index it cannot load: a note, unless the segment cannot be
        // rebuilt from (then the damage above is the problem, and open refuses it).
        if (r.clean) report.notes.push_back(IndexRebuildNote(Rel(idx_path), idx.status()));
      } else if (r.clean) {
        ++report.index_files;
        CompareIndex(**idx, scanned, r, Rel(idx_path), report.problems);
      } else {
        expected = (*idx)->end_position();
      }
      if (!r.clean) {
        // The scan stopped at the damage, so where each stream stands at the end of this
        // segment is known only from its index file's tips; without them, unknown.
        versions_known = idx.ok();
        if (idx.ok()) {
          next_version.Clear();
          (*idx)->ForEachTip([&](std::string_view stream, const StreamTip& tip) {
            next_version.Set(stream, tip.last_version + 1);
          });
        }
      }
    } else if (!r.clean) {
      versions_known = false;
    }
    total -= std::min(total - done, std::filesystem::file_size(found[k].second, ec));
    total += r.end_offset;
    done += r.end_offset;
    if (progress) progress(done, total);
  }
  return report;
}

}  // namespace esd::storage
