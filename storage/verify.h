// Checking a store's files without opening it for writing: every segment header and how the
// segments join, every batch checksum and dense positions, and each sealed segment's index
// file against the log. Read-only; meant for a stopped store (esctl --data-dir), or for the
// sealed segments of a running one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/status.h"

namespace esd::storage {

struct VerifyProblem {
  std::string file;                 // relative to the data directory
  uint64_t offset = 0;              // in that file
  std::optional<uint64_t> position; // the global position involved, when there is one
  std::string what;
};

struct VerifyReport {
  uint64_t segments = 0;
  uint64_t batches = 0;
  uint64_t events = 0;
  uint64_t bytes = 0;          // of log checked
  uint64_t index_files = 0;    // checked against the log
  // Damage: what Open refuses, or what a read would refuse to serve. Exit 4 in esctl.
  std::vector<VerifyProblem> problems;
  // What the next Open repairs by itself with nothing acknowledged lost (a missing or stale
  // index file, a tail that no later batch vouches for), in the words of
  // RecoveryReport::notes. Not problems.
  std::vector<std::string> notes;
  // The tail note alone, when there is one (also in `notes`).
  std::optional<std::string> torn_tail;
  bool ok() const { return problems.empty(); }
};

// `progress(done, total)` is called as the bytes of log are checked: `done` counts only
// the log (not the zeros preallocated after it), `total` is an estimate that shrinks to the
// log's size as segments are scanned, and equals `done` at the end.
using VerifyProgress = std::function<void(uint64_t done, uint64_t total)>;

// kNotFound when `dir` holds no store; otherwise the report, however bad the files are.
Result<VerifyReport> VerifyStore(const std::filesystem::path& dir, const VerifyProgress& progress = {});

}  // namespace esd::storage
