// Helpers shared by the storage tests: temporary directories, event builders and the
// byte-level damage tools (flip, truncate, zero) that recovery tests need.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "storage/file.h"
#include "storage/store.h"

namespace esd::storage::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Options for small, fast test stores: 64 KiB segments, durable appends.
Options SmallOptions();

// A 64-bit finaliser (splitmix/murmur3): spreads any input over all bits.
uint64_t Mix(uint64_t x);

// An event whose id and bytes are a function of (stream, version, salt), so a reader can
// check content without keeping a copy.
EventData MakeEvent(const std::string& stream, uint64_t version, uint64_t salt = 0,
                    size_t data_size = 40);
std::vector<EventData> MakeEvents(const std::string& stream, uint64_t first_version, size_t count,
                                  uint64_t salt = 0, size_t data_size = 40);
std::string ExpectedData(const std::string& stream, uint64_t version, uint64_t salt,
                         size_t data_size);

// The names of the threads of process `pid` ("self": this one), from /proc/PID/task/*/comm,
// one entry per thread.
std::multiset<std::string> ThreadNames(const std::string& pid = "self");

// Segment files of a store directory, in log order.
std::vector<std::filesystem::path> SegmentFiles(const std::filesystem::path& data_dir);

void FlipByte(const std::filesystem::path& file, uint64_t offset);
void TruncateFile(const std::filesystem::path& file, uint64_t size);
void ZeroRange(const std::filesystem::path& file, uint64_t offset, uint64_t length);
std::vector<uint8_t> ReadFileBytes(const std::filesystem::path& file);

// The events of a run of records (Store::ReadAllRecords), parsed back with
// format::ParseEvent: nullopt unless the run holds exactly run.count records, all of
// run.stream, at positions run.first, run.first + 1, ...
std::optional<std::vector<EventView>> EventsOfRun(const Store::RecordRun& run);

// Every event $all serves, read as records (Store::ReadAllRecords through a ReadBuffer, going
// on from where each scan stopped) and parsed back run by run (EventsOfRun). `visit` sees each
// event; its views are valid during the call only. Not ok when a read fails, or when a run
// does not hold what it says (Corruption, naming the run).
Status ForEachEventAsRecords(const Store& store, const std::function<void(const EventView&)>& visit);

// Offsets of every batch in a segment file (walks the headers, no checksum check).
std::vector<uint64_t> BatchOffsets(const std::filesystem::path& segment_file);

// Writes a valid batch of one event of `stream` at `first_version` right after the last
// batch of `segment_file`, continuing its positions, timestamp and segment id: for building
// logs whose checksums all hold but whose stream versions do not (a gap, a repeat). Returns
// its offset.
uint64_t AppendRawBatch(const std::filesystem::path& segment_file, const std::string& stream, uint64_t first_version);

// Installs a fault script for the file operations of storage/ for its lifetime (file.h):
// `script` sees every operation, serialised, and says which one fails how.
class ScriptedFaults : public FileFaults {
 public:
  using Script = std::function<InjectedFault(FileOp, const std::filesystem::path&)>;
  explicit ScriptedFaults(Script script) : script_(std::move(script)) { SetFileFaults(this); }
  ~ScriptedFaults() override { SetFileFaults(nullptr); }
  InjectedFault Before(FileOp op, const std::filesystem::path& path) override {
    std::lock_guard lock(mu_);
    return script_(op, path);
  }

 private:
  std::mutex mu_;
  Script script_;
};

}  // namespace esd::storage::testing
