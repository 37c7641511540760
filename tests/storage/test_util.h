// Helpers shared by the storage tests: temporary directories, event builders and the
// byte-level damage tools (flip, truncate, zero) that recovery tests need.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

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

// Segment files of a store directory, in log order.
std::vector<std::filesystem::path> SegmentFiles(const std::filesystem::path& data_dir);

void FlipByte(const std::filesystem::path& file, uint64_t offset);
void TruncateFile(const std::filesystem::path& file, uint64_t size);
void ZeroRange(const std::filesystem::path& file, uint64_t offset, uint64_t length);
std::vector<uint8_t> ReadFileBytes(const std::filesystem::path& file);

// Offsets of every batch in a segment file (walks the headers, no checksum check).
std::vector<uint64_t> BatchOffsets(const std::filesystem::path& segment_file);

}  // namespace esd::storage::testing
