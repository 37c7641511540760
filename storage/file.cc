#include "storage/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <vector>

namespace esd::storage {

namespace {

std::atomic<FileFaults*> g_faults{nullptr};

// The fault to inject before `op` on `path`, if a test installed any.
InjectedFault Inject(FileOp op, const std::filesystem::path& path) {
  FileFaults* f = g_faults.load(std::memory_order_acquire);
  return f == nullptr ? InjectedFault{} : f->Before(op, path);
}

Status ErrnoStatus(const std::string& what, int err) {
  if (err == ENOSPC || err == EDQUOT) return Status::OutOfSpace(what + ": " + std::strerror(err));
  if (err == EMFILE) {
    rlimit limit{};
    const std::string may = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                                ? std::to_string(limit.rlim_cur)
                                : std::string("no more");
    return Status::IOError(what + ": " + std::strerror(err) + ": this process may open " + may +
                           " files (RLIMIT_NOFILE), and a store keeps one open file per segment; raise the limit "
                           "(ulimit -n, or LimitNOFILE= in esd's systemd unit)");
  }
  return Status::IOError(what, err);
}

}  // namespace

OpenFileLimit RaiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  OpenFileLimit out{limit.rlim_cur, limit.rlim_cur};
  // The kernel caps any process at fs.nr_open, whatever the hard limit says (unlimited too).
  rlim_t target = limit.rlim_max;
  uint64_t nr_open = 0;
  if (std::ifstream in("/proc/sys/fs/nr_open"); in >> nr_open && nr_open > 0) {
    target = std::min<rlim_t>(target, static_cast<rlim_t>(nr_open));
  }
  if (limit.rlim_cur == RLIM_INFINITY || target == RLIM_INFINITY || limit.rlim_cur >= target) return out;
  const rlimit raised{target, limit.rlim_max};
  if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) out.now = target;
  return out;
}

std::optional<uint64_t> OpenFileCount() {
  std::error_code ec;
  uint64_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::end(it);
       it.increment(ec)) {
    ++fds;
  }
  if (ec) return std::nullopt;
  return fds;
}

const char* FileOpName(FileOp op) {
  switch (op) {
    case FileOp::kOpen: return "open";
    case FileOp::kWrite: return "pwrite";
    case FileOp::kSync: return "fdatasync";
    case FileOp::kSyncDir: return "fsync(dir)";
    case FileOp::kRename: return "rename";
    case FileOp::kRemove: return "unlink";
    case FileOp::kTruncate: return "ftruncate";
    case FileOp::kMap: return "mmap";
  }
  return "?";
}

void SetFileFaults(FileFaults* faults) { g_faults.store(faults, std::memory_order_release); }

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

Result<File> File::Open(const std::filesystem::path& path, int flags, int mode) {
  if (auto f = Inject(FileOp::kOpen, path); f.error != 0) return ErrnoStatus("open " + path.string(), f.error);
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("open " + path.string(), errno);
  return File(fd, path);
}

Status File::WriteAt(uint64_t offset, std::span<const uint8_t> data) const {
  while (!data.empty()) {
    const InjectedFault fault = Inject(FileOp::kWrite, path_);
    if (fault.error != 0 && fault.short_write && data.size() > 1) {
      // A short write: the first half reaches the file, then the device gives up.
      const size_t half = data.size() / 2;
      if (::pwrite(fd_, data.data(), half, static_cast<off_t>(offset)) < 0) return ErrnoStatus("pwrite " + path_.string(), errno);
    }
    if (fault.error != 0) return ErrnoStatus("pwrite " + path_.string(), fault.error);
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("pwrite " + path_.string(), errno);
    }
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Result<size_t> File::ReadAt(uint64_t offset, std::span<uint8_t> data) const {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pread(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("pread " + path_.string(), errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status File::DataSync() const {
  if (auto f = Inject(FileOp::kSync, path_); f.error != 0) return ErrnoStatus("fdatasync " + path_.string(), f.error);
  if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync " + path_.string(), errno);
  return Status::Ok();
}

Status File::WriteBack(uint64_t offset, uint64_t length) const {
  constexpr unsigned kFlags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  while (::sync_file_range(fd_, static_cast<off64_t>(offset), static_cast<off64_t>(length), kFlags) != 0) {
    if (errno != EINTR) return ErrnoStatus("sync_file_range " + path_.string(), errno);
  }
  return Status::Ok();
}

Status File::StartWriteBack(uint64_t offset, uint64_t length) const {
  while (::sync_file_range(fd_, static_cast<off64_t>(offset), static_cast<off64_t>(length), SYNC_FILE_RANGE_WRITE) != 0) {
    if (errno != EINTR) return ErrnoStatus("sync_file_range " + path_.string(), errno);
  }
  return Status::Ok();
}

Result<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat " + path_.string(), errno);
  return static_cast<uint64_t>(st.st_size);
}

Status File::Truncate(uint64_t size) const {
  if (auto f = Inject(FileOp::kTruncate, path_); f.error != 0) return ErrnoStatus("ftruncate " + path_.string(), f.error);
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return ErrnoStatus("ftruncate " + path_.string(), errno);
  return Status::Ok();
}

Status File::WriteZeros(uint64_t offset, uint64_t length) const {
  static const std::vector<uint8_t> kZeros(1 << 20, 0);
  while (length > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(length, kZeros.size()));
    Status s = WriteAt(offset, std::span(kZeros.data(), n));
    if (!s.ok()) return s;
    offset += n;
    length -= n;
  }
  return Status::Ok();
}

MappedFile::MappedFile(MappedFile&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<MappedFile> MappedFile::Map(const File& file, size_t size) {
  MappedFile m;
  if (size == 0) return m;
  if (auto f = Inject(FileOp::kMap, file.path()); f.error != 0) return ErrnoStatus("mmap " + file.path().string(), f.error);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, file.fd(), 0);
  if (p == MAP_FAILED) return ErrnoStatus("mmap " + file.path().string(), errno);
  m.data_ = static_cast<const uint8_t*>(p);
  m.size_ = size;
  return m;
}

Status SyncDirectory(const std::filesystem::path& dir) {
  auto f = File::Open(dir, O_RDONLY | O_DIRECTORY);
  if (!f.ok()) return f.status();
  if (auto fault = Inject(FileOp::kSyncDir, dir); fault.error != 0) return ErrnoStatus("fsync " + dir.string(), fault.error);
  if (::fsync(f->fd()) != 0) return Status::IOError("fsync " + dir.string(), errno);
  return Status::Ok();
}

Status CreateDirectoriesDurably(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::Ok();
  const std::filesystem::path parent = dir.has_parent_path() ? dir.parent_path() : std::filesystem::path(".");
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    if (Status s = CreateDirectoriesDurably(parent); !s.ok()) return s;
  }
  if (!std::filesystem::create_directory(dir, ec) && ec) return Status::IOError("create " + dir.string() + ": " + ec.message());
  // The new directory's own entries (none yet) and its name in the parent.
  if (Status s = SyncDirectory(dir); !s.ok()) return s;
  return SyncDirectory(parent);
}

Status CopyFileDurably(const std::filesystem::path& from, const std::filesystem::path& to,
                       const std::function<void(uint64_t, uint64_t)>& progress, std::optional<uint64_t> length) {
  auto in = File::Open(from, O_RDONLY);
  if (!in.ok()) return in.status();
  uint64_t bytes = 0;
  if (length) {
    bytes = *length;
  } else {
    auto size = in->Size();
    if (!size.ok()) return size.status();
    bytes = *size;
  }
  auto out = File::Open(to, O_WRONLY | O_CREAT | O_EXCL);
  if (!out.ok()) return out.status();
  std::vector<uint8_t> buffer(std::min<uint64_t>(bytes, 1 << 20));
  for (uint64_t off = 0; off < bytes;) {
    auto n = in->ReadAt(off, std::span(buffer.data(), std::min<uint64_t>(buffer.size(), bytes - off)));
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::IOError(from.string() + " ended early");
    if (Status s = out->WriteAt(off, std::span(buffer.data(), *n)); !s.ok()) return s;
    off += *n;
    if (progress) progress(off, bytes);
  }
  return out->DataSync();
}

Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (auto f = Inject(FileOp::kRename, from); f.error != 0) return ErrnoStatus("rename " + from.string(), f.error);
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename " + from.string() + " to " + to.string(), errno);
  return Status::Ok();
}

Status LinkFile(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (auto f = Inject(FileOp::kRename, from); f.error != 0) return ErrnoStatus("link " + from.string(), f.error);
  if (::link(from.c_str(), to.c_str()) != 0) return ErrnoStatus("link " + from.string() + " to " + to.string(), errno);
  return Status::Ok();
}

Status RemoveFile(const std::filesystem::path& path) {
  if (auto f = Inject(FileOp::kRemove, path); f.error != 0) return ErrnoStatus("unlink " + path.string(), f.error);
  if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink " + path.string(), errno);
  return Status::Ok();
}

Status WriteFileAtomically(const std::filesystem::path& path, std::span<const uint8_t> bytes) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    auto f = File::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!f.ok()) return f.status();
    // A large file (a projection snapshot: ~100 MB at 350 k orders) goes out a chunk at a
    // time, each started on its way to the disk as it is written and waited for one chunk
    // later. Written whole and then fdatasync'ed, its dirty pages all reached the device
    // queue at once, and the log's fdatasyncs meanwhile waited behind them (one over 50 ms
    // in the orders run of docs/performance.md). This way at most two chunks are in flight
    // and the closing fdatasync has little left to write.
    constexpr size_t kChunk = 4u << 20;
    Status s;
    for (size_t off = 0; s.ok() && off < bytes.size(); off += kChunk) {
      const size_t n = std::min(kChunk, bytes.size() - off);
      s = f->WriteAt(off, bytes.subspan(off, n));
      if (s.ok()) s = f->StartWriteBack(off, n);
      if (s.ok() && off > 0) s = f->WriteBack(off - kChunk, kChunk);
    }
    if (s.ok()) s = f->DataSync();
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (Status s = RenameFile(tmp, path); !s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDirectory(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
}

Result<DirectoryLock> DirectoryLock::Acquire(const std::filesystem::path& dir) {
  auto f = File::Open(dir / "LOCK", O_RDWR | O_CREAT);
  if (!f.ok()) return f.status();
  if (::flock(f->fd(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) return Status::IOError("flock " + (dir / "LOCK").string(), err);
    char buf[32] = {};
    auto n = f->ReadAt(0, std::span(reinterpret_cast<uint8_t*>(buf), sizeof(buf) - 1));
    std::string holder = n.ok() && *n > 0 ? std::string(buf, *n) : std::string("unknown");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return Status::Locked("data directory " + dir.string() +
                          " is in use by another esd process (pid " + holder +
                          "); stop it or choose another --data-dir");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (f->Truncate(0).ok()) {
    (void)f->WriteAt(0, std::span(reinterpret_cast<const uint8_t*>(pid.data()), pid.size()));
  }
  return DirectoryLock(std::move(f).value());
}

uint64_t NowMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace esd::storage
