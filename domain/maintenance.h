// Whole-store operations that cover the log and the snapshots beside it, shared by the
// daemon (Admin.verify, Admin.backup) and esctl's offline commands, so that both check and
// copy the same things.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

#include "storage/status.h"
#include "storage/store.h"
#include "storage/verify.h"

namespace esd::domain {

// `progress(done, total)` in bytes of log.
using ByteProgress = std::function<void(uint64_t done, uint64_t total)>;

struct StoreVerification {
  storage::VerifyReport report;  // snapshots that would not be loaded are in report.notes
  uint64_t snapshots = 0;        // snapshot files checked
};
// storage::VerifyStore on `dir`, then every snapshot file (checksums, format version, body,
// and with `log`, the open store of `dir`, that the log holds what it covers): each one that
// does not verify, i.e. would not be loaded, is a note naming its file and why. Not a
// problem: esd ignores such a snapshot and rebuilds from the log, so nothing is lost (verify
// is as strict as open, and no stricter).
// kNotFound: no store there.
// The note for a snapshot that would not be loaded.
std::string SnapshotIgnoredNote(const std::string& file, const std::string& problem);

storage::Result<StoreVerification> VerifyWithSnapshots(const std::filesystem::path& dir,
                                                       const ByteProgress& progress = {},
                                                       const storage::Store* log = nullptr);

// A consistent copy of `store` (whose files are in `data_dir`) with its snapshots, into
// `dest`, which must not exist or be empty: the snapshots first, so that none is ahead of the
// log copied after them, then Store::Backup. Returns the position below which the copy holds
// every event; `bytes` (if given) gets the bytes of log copied. Blocks: not on an event loop.
storage::Result<storage::GlobalPosition> BackupWithSnapshots(const storage::Store& store,
                                                             const std::filesystem::path& data_dir,
                                                             const std::filesystem::path& dest,
                                                             const ByteProgress& progress = {},
                                                             uint64_t* bytes = nullptr);

}  // namespace esd::domain
