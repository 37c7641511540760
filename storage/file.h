// POSIX file primitives with RAII ownership. Nothing here knows the log format; the I/O
// policy (when to sync, how to preallocate) lives with the code that calls these.
//
// Every file operation of storage/ (and of the snapshots in domain/) goes through this
// file, so that tests can make any one of them fail: see FileFaults below. Code elsewhere
// must not call open/pwrite/fdatasync/rename/unlink/mmap on store files directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "storage/status.h"

namespace esd::storage {

// ---- Fault injection, in the spirit of leveldb's Env and RocksDB's FaultInjectionTestFS ----
//
// Tests install a FileFaults to make the Nth write, sync, rename ... fail. Production code
// never installs one; the cost when none is installed is one relaxed atomic load per call.
enum class FileOp : uint8_t {
  kOpen,      // File::Open (creating or not)
  kWrite,     // File::WriteAt, File::WriteZeros: each pwrite
  kSync,      // File::DataSync (fdatasync)
  kSyncDir,   // SyncDirectory (fsync of a directory)
  kRename,    // RenameFile, and the rename inside WriteFileAtomically
  kRemove,    // RemoveFile
  kTruncate,  // File::Truncate (ftruncate)
  kMap,       // MappedFile::Map (mmap)
};
inline constexpr int kFileOpCount = 8;
const char* FileOpName(FileOp op);

struct InjectedFault {
  int error = 0;             // errno to fail with; 0: no fault, the call goes ahead
  bool short_write = false;  // kWrite only: write the first half for real, then fail
};

class FileFaults {
 public:
  virtual ~FileFaults() = default;
  // Called before each operation, on whichever thread makes it. `path` is the file (for a
  // rename: its source). Must be thread-safe.
  virtual InjectedFault Before(FileOp op, const std::filesystem::path& path) = 0;
};

// Installs `faults` for every file operation of this process; nullptr removes it. The
// object must outlive its installation. For tests only.
void SetFileFaults(FileFaults* faults);

// An open file descriptor; closed by the destructor.
class File {
 public:
  File() = default;
  File(File&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  // flags as for open(2); O_CLOEXEC is always added.
  static Result<File> Open(const std::filesystem::path& path, int flags, int mode = 0644);

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  const std::filesystem::path& path() const { return path_; }
  // After a rename: the name later errors (and fault injection) give the file.
  void Renamed(std::filesystem::path path) { path_ = std::move(path); }

  // Writes all of `data` at `offset`, retrying short writes. ENOSPC and EDQUOT come back as
  // kOutOfSpace, other failures as kIOError.
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) const;
  // Reads exactly data.size() bytes unless the file ends first; returns the bytes read.
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> data) const;
  Status DataSync() const;
  // Starts writing [offset, offset + length) back to the disk and waits until it is written
  // (sync_file_range(2)): no metadata, no cache flush, so not a durability point. It keeps a
  // background writer's dirty pages from piling up for the next fdatasync on the same file.
  Status WriteBack(uint64_t offset, uint64_t length) const;
  // The same without waiting: the disk starts on these pages while the caller goes on, so a
  // later fdatasync has less left to wait for (scavenge's chunks).
  Status StartWriteBack(uint64_t offset, uint64_t length) const;
  Result<uint64_t> Size() const;
  // Makes [offset, offset + length) real zero bytes on disk (written, not a hole), so that
  // later overwrites allocate nothing and fdatasync does not commit metadata.
  Status WriteZeros(uint64_t offset, uint64_t length) const;
  // ftruncate(2): sets the file's size.
  Status Truncate(uint64_t size) const;

 private:
  File(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::filesystem::path path_;  // for error messages and fault injection
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

// The process's open-file limit (RLIMIT_NOFILE). A store keeps one descriptor per segment
// file (it reads each with pread), so a large store needs more than the soft limit a login
// shell often leaves (1024, under a hard limit of 524288 or more). RaiseOpenFileLimit sets
// the soft limit to the hard one (or to fs.nr_open, the kernel's cap, when that is lower)
// and says what it was and is; it changes nothing when it cannot. esd and esctl call it as
// they start. An open that fails with EMFILE says the limit and how to raise it.
struct OpenFileLimit {
  uint64_t before = 0, now = 0;  // the soft limit; 0: it could not be read
};
OpenFileLimit RaiseOpenFileLimit();
// Descriptors this process has open now (/proc/self/fd); nullopt when that cannot be read.
std::optional<uint64_t> OpenFileCount();

// fsync of a directory, so that a create, rename or unlink inside it is durable.
Status SyncDirectory(const std::filesystem::path& dir);

// Creates `dir` and any missing parents, and makes each one it created durable (fsync of
// the new directory and of the one that holds it). Existing directories are left alone.
Status CreateDirectoriesDurably(const std::filesystem::path& dir);

// A byte-for-byte copy of the first `length` bytes of `from` (all of it by default; kIOError
// if it is shorter) as the new file `to` (which must not exist), fdatasync'ed.
// `progress(done, total)` in bytes of this file. The directory is not synced: the caller
// does, once.
Status CopyFileDurably(const std::filesystem::path& from, const std::filesystem::path& to,
                       const std::function<void(uint64_t, uint64_t)>& progress = {},
                       std::optional<uint64_t> length = std::nullopt);

// rename(2) and unlink(2), as Status. Neither syncs the directory: the caller does, once.
Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to);
Status RemoveFile(const std::filesystem::path& path);
// link(2): a second name for `from` (fault injection counts it as a kRename). Scavenge keeps
// a segment it replaces under one, to recycle it as a spare.
Status LinkFile(const std::filesystem::path& from, const std::filesystem::path& to);

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
