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
  storage::VerifyReport report;  // snapshot problems are listed in report.problems too
  uint64_t snapshots = 0;        // snapshot files checked
};
// storage::VerifyStore on `dir`, then every snapshot file (checksums, format version, body,
// and with `log`, the open store of `dir`, that the log holds what it covers): each one that
// does not verify, i.e. would not be loaded, is a problem naming its file and why.
// kNotFound: no store there.
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
