// POSIX file primitives with RAII ownership. Nothing here knows the log format; the I/O
// policy (when to sync, how to preallocate) lives with the code that calls these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "storage/status.h"

namespace esd::storage {

// An open file descriptor; closed by the destructor.
class File {
 public:
  File() = default;
  explicit File(int fd) : fd_(fd) {}
  File(File&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  // flags as for open(2); O_CLOEXEC is always added.
  static Result<File> Open(const std::filesystem::path& path, int flags, int mode = 0644);

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Writes all of `data` at `offset`, retrying short writes. ENOSPC and EDQUOT come back as
  // kOutOfSpace, other failures as kIOError.
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) const;
  // Reads exactly data.size() bytes unless the file ends first; returns the bytes read.
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> data) const;
  Status DataSync() const;
  Result<uint64_t> Size() const;
  // Makes [offset, offset + length) real zero bytes on disk (written, not a hole), so that
  // later overwrites allocate nothing and fdatasync does not commit metadata.
  Status WriteZeros(uint64_t offset, uint64_t length) const;

 private:
  int fd_ = -1;
};

// A read-only shared mapping of a whole file. Readers see what the writer pwrite()s because
// both go through the page cache. The mapping must not outlive the bytes it covers: files
// are never shrunk while mapped.
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  static Result<MappedFile> Map(const File& file, size_t size);

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// fsync of a directory, so that a create, rename or unlink inside it is durable.
Status SyncDirectory(const std::filesystem::path& dir);

// Writes `bytes` to `path` atomically: a temporary file, fdatasync, rename, fsync(dir).
Status WriteFileAtomically(const std::filesystem::path& path, std::span<const uint8_t> bytes);

// An exclusive flock on DATA/LOCK, held for the lifetime of the object. A second holder,
// in this process or another, gets kLocked naming the pid that holds it.
class DirectoryLock {
 public:
  DirectoryLock(DirectoryLock&& o) noexcept : file_(std::move(o.file_)) {}
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock() = default;

  static Result<DirectoryLock> Acquire(const std::filesystem::path& dir);

 private:
  explicit DirectoryLock(File f) : file_(std::move(f)) {}
  File file_;
};

// Microseconds since the Unix epoch from the wall clock.
uint64_t NowMicros();

}  // namespace esd::storage
