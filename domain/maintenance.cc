#include "domain/maintenance.h"

#include <fcntl.h>

#include <vector>

#include "domain/snapshots.h"
#include "storage/file.h"

namespace esd::domain {

std::string SnapshotIgnoredNote(const std::string& file, const std::string& problem) {
  return file + ": snapshot does not verify (" + problem +
         "); esd ignores it and rebuilds from the log, so nothing is lost, and it may be deleted";
}

storage::Result<StoreVerification> VerifyWithSnapshots(const std::filesystem::path& dir,
                                                       const ByteProgress& progress, const storage::Store* log) {
  auto checked = storage::VerifyStore(dir, progress);
  if (!checked.ok()) return checked.status();
  StoreVerification out{std::move(checked).value(), 0};
  for (const auto& s : ListSnapshots(dir, "", SIZE_MAX, log)) {
    ++out.snapshots;
    // A snapshot is a shortcut: esd ignores one it would not load and rebuilds from the log,
    // which holds every event. What open repairs by itself is a note, not damage.
    if (!s.ok) out.report.notes.push_back(SnapshotIgnoredNote(s.file, s.problem));
  }
  return out;
}

storage::Result<storage::GlobalPosition> BackupWithSnapshots(const storage::Store& store,
                                                             const std::filesystem::path& data_dir,
                                                             const std::filesystem::path& dest,
                                                             const ByteProgress& progress, uint64_t* bytes) {
  std::error_code ec;
  if (dest.empty() || (std::filesystem::exists(dest, ec) && !std::filesystem::is_empty(dest, ec))) {
    return storage::Status::InvalidArgument("the backup directory " + dest.string() + " must be new or empty");
  }
  // Directories to sync at the end, as their entries change: dest, and each ancestor up to
  // and including the first that existed before (it gains the entry of the first one made).
  std::vector<std::filesystem::path> dirs;
  auto p = std::filesystem::absolute(dest, ec).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "dir/" names dir
  for (; !p.empty(); p = p.parent_path()) {
    dirs.push_back(p);
    if (std::filesystem::exists(p, ec) || p == p.parent_path()) break;
  }
  std::filesystem::create_directories(dest, ec);
  if (ec) return storage::Status::IOError("create " + dest.string() + ": " + ec.message());
  // First: until the end, nothing opens this as a store.
  if (auto s = storage::MarkBackupInProgress(dest); !s.ok()) return s;
  // The daemon may write or delete snapshots meanwhile: each is replaced by a rename, so a
  // copy gets one whole version; one deleted before it was copied is left out.
  dirs.push_back(dest / "snapshots");
  for (const char* sub : {"orders", "projections"}) {
    const auto from = data_dir / "snapshots" / sub, to = dest / "snapshots" / sub;
    std::filesystem::create_directories(to, ec);
    if (ec) return storage::Status::IOError("create " + to.string() + ": " + ec.message());
    dirs.push_back(to);
    for (const auto& f : std::filesystem::directory_iterator(from, ec)) {
      if (f.path().extension() != ".snap") continue;
      // Durable when this returns: the files now, the directories once the log is in.
      storage::Status s = storage::CopyFileDurably(f.path(), to / f.path().filename());
      if (!s.ok() && !std::filesystem::exists(f.path(), ec)) continue;  // deleted meanwhile
      if (!s.ok()) return s;
    }
  }
  auto upto = store.Backup(dest, [&](uint64_t done, uint64_t total) {
    if (bytes != nullptr) *bytes = done;
    if (progress) progress(done, total);
  });
  if (!upto.ok()) return upto;
  for (const auto& d : dirs) {
    if (auto s = storage::SyncDirectory(d); !s.ok()) return s;
  }
  if (auto s = storage::FinishBackup(dest); !s.ok()) return s;
  return upto;
}

}  // namespace esd::domain
