// Salvage: the operator's way past damage before the end of the log, on a stopped store.
//
// Open refuses a store whose log is damaged before its tail (storage/recovery.cc), and a
// read refuses a damaged batch in a sealed segment. SalvageStore finds the first damage in
// log order, by the rules open and verify share (JudgeSegment, dense stream versions,
// segments that join up), and moves everything from there on out of the log, into
//
//   DATA/quarantine/<UTC time>/   the whole damaged segment as it was, byte for byte; every
//                                 later segment and index file; SALVAGE.txt saying what and why
//
// Nothing is deleted. Afterwards the log ends just before the first bad batch, and Open
// takes the store. Positions from there on are assigned again to new appends: readers and
// projections that had read past the cut must start again (docs/storage.md, "Salvage").
//
// Crash-safe: the copies are durable before the log changes, and each step can be repeated;
// a salvage interrupted at any point is finished by running it again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"
#include "storage/types.h"

namespace esd::storage {

struct SalvageReport {
  // nullopt: nothing to salvage, the store opens as it is (a torn tail is not damage).
  std::optional<DamageLocation> damage;
  std::string problem;                 // what is wrong there
  std::filesystem::path quarantine;    // where the moved files are
  std::vector<std::string> moved;      // file names, relative to the data directory
  uint64_t bytes_moved = 0;            // of log taken out: from the damage to the end
  GlobalPosition log_end;              // the log now ends here (exclusive)
  uint64_t events_before = 0;          // events the log held before, up to the damage
};

struct SalvageOptions {
  bool dry_run = false;  // find and report, change nothing
  // `progress(done, total)` in bytes, as the log is checked and the damaged segment copied.
  std::function<void(uint64_t, uint64_t)> progress;
};

// Takes DATA/LOCK (kLocked while esd runs there). kNotFound when `dir` holds no store.
Result<SalvageReport> SalvageStore(const std::filesystem::path& dir, const SalvageOptions& options = {});

}  // namespace esd::storage
