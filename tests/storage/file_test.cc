// POSIX file primitives: the directory lock, atomic whole-file writes, zero filling, reads
// and writes at offsets, and error messages that name the file.
#include "storage/file.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace esd::storage {
namespace {

using testing::ReadFileBytes;
using testing::TempDir;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<std::string> FileNames(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

TEST(DirectoryLock, SecondAcquireInTheSameProcessIsLockedAndNamesThePid) {
  TempDir dir;
  auto first = DirectoryLock::Acquire(dir.path());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = DirectoryLock::Acquire(dir.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kLocked);
  const std::string pid = "pid " + std::to_string(::getpid()) + ")";
  EXPECT_NE(second.status().message().find(pid), std::string::npos) << second.status().ToString();
  EXPECT_NE(second.status().message().find(dir.path().string()), std::string::npos)
      << second.status().ToString();
  EXPECT_EQ(DirectoryLock::Acquire(dir.path()).status().code(), Status::Code::kLocked)
      << "a refused attempt does not release the holder's lock";
}

TEST(DirectoryLock, LockFileHoldsTheHoldersPid) {
  TempDir dir;
  auto lock = DirectoryLock::Acquire(dir.path());
  ASSERT_TRUE(lock.ok());
  const auto bytes = ReadFileBytes(dir.path() / "LOCK");
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), std::to_string(::getpid()) + "\n");
}

TEST(DirectoryLock, IsReleasedOnDestruction) {
  TempDir dir;
  {
    auto lock = DirectoryLock::Acquire(dir.path());
    ASSERT_TRUE(lock.ok());
  }
  auto again = DirectoryLock::Acquire(dir.path());
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(DirectoryLock, MovedLockStillHoldsTheDirectory) {
  TempDir dir;
  auto acquired = DirectoryLock::Acquire(dir.path());
  ASSERT_TRUE(acquired.ok());
  DirectoryLock moved = std::move(acquired).value();
  EXPECT_EQ(DirectoryLock::Acquire(dir.path()).status().code(), Status::Code::kLocked);
}

TEST(DirectoryLock, LocksOfDifferentDirectoriesAreIndependent) {
  TempDir a, b;
  auto la = DirectoryLock::Acquire(a.path());
  auto lb = DirectoryLock::Acquire(b.path());
  EXPECT_TRUE(la.ok()) << la.status().ToString();
  EXPECT_TRUE(lb.ok()) << lb.status().ToString();
}

TEST(WriteFileAtomically, CreatesTheFileAndLeavesNoTemporary) {
  TempDir dir;
  const auto path = dir.path() / "data.bin";
  ASSERT_TRUE(WriteFileAtomically(path, Bytes("hello")).ok());
  const auto bytes = ReadFileBytes(path);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "hello");
  EXPECT_EQ(FileNames(dir.path()), std::vector<std::string>{"data.bin"});
}

TEST(WriteFileAtomically, ReplacesTheWholeContent) {
  TempDir dir;
  const auto path = dir.path() / "data.bin";
  ASSERT_TRUE(WriteFileAtomically(path, Bytes("a much longer first version")).ok());
  ASSERT_TRUE(WriteFileAtomically(path, Bytes("short")).ok());
  const auto bytes = ReadFileBytes(path);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "short");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data.bin.tmp"));
  EXPECT_EQ(FileNames(dir.path()).size(), 1u);
}

TEST(WriteFileAtomically, AnEmptyContentReplacesTheFileWithAnEmptyOne) {
  TempDir dir;
  const auto path = dir.path() / "data.bin";
  ASSERT_TRUE(WriteFileAtomically(path, Bytes("something")).ok());
  ASSERT_TRUE(WriteFileAtomically(path, {}).ok());
  EXPECT_TRUE(ReadFileBytes(path).empty());
  EXPECT_EQ(FileNames(dir.path()), std::vector<std::string>{"data.bin"});
}

TEST(WriteFileAtomically, FailureInAMissingDirectoryIsReported) {
  TempDir dir;
  Status s = WriteFileAtomically(dir.path() / "no-such-dir" / "f", Bytes("x"));
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("no-such-dir"), std::string::npos) << s.ToString();
}

TEST(WriteFileAtomically, BareFileNameInTheWorkingDirectorySucceeds) {
  TempDir dir;
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  const Status s = WriteFileAtomically("bare.bin", Bytes("x"));
  std::filesystem::current_path(cwd);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "bare.bin"));
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// Fails every pwrite to a file whose name ends in `suffix` after the first `allowed`.
class FailWritesAfter : public FileFaults {
 public:
  FailWritesAfter(std::string suffix, int allowed) : suffix_(std::move(suffix)), allowed_(allowed) {
    SetFileFaults(this);
  }
  ~FailWritesAfter() override { SetFileFaults(nullptr); }
  InjectedFault Before(FileOp op, const std::filesystem::path& path) override {
    if (op != FileOp::kWrite || !path.string().ends_with(suffix_)) return {};
    return {.error = seen_++ < allowed_ ? 0 : EIO};
  }

 private:
  std::string suffix_;
  int allowed_;
  std::atomic<int> seen_{0};
};

TEST(WriteFileAtomically, ALargeFileIsWrittenWholeAcrossItsChunks) {
  TempDir dir;
  const auto path = dir.path() / "big.bin";
  std::string content((9u << 20) + 123, '\0');  // several write-back chunks and a partial one
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 131 + (i >> 12));
  ASSERT_TRUE(WriteFileAtomically(path, Bytes(content)).ok());
  const auto bytes = ReadFileBytes(path);
  ASSERT_EQ(bytes.size(), content.size());
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), content.begin(),
                         [](uint8_t a, char b) { return a == static_cast<uint8_t>(b); }));
  EXPECT_EQ(FileNames(dir.path()), std::vector<std::string>{"big.bin"});
}

// A large file goes out in chunks, each started on its way to the disk as it is written and
// waited for one chunk later, so that its dirty pages never pile up for a concurrent
// fdatasync of the log. A write failing after the first chunk leaves the previous version
// whole and no temporary file.
TEST(WriteFileAtomically, AWriteFailingAfterTheFirstChunkKeepsThePreviousVersion) {
  TempDir dir;
  const auto path = dir.path() / "big.bin";
  ASSERT_TRUE(WriteFileAtomically(path, Bytes("previous version")).ok());
  Status s;
  {
    FailWritesAfter faults(".tmp", 1);
    s = WriteFileAtomically(path, Bytes(std::string(9u << 20, 'n')));
  }
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("big.bin.tmp"), std::string::npos) << s.ToString();
  const auto bytes = ReadFileBytes(path);
  ASSERT_EQ(bytes.size(), std::string_view("previous version").size());  // not the 9 MiB
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "previous version");
  EXPECT_EQ(FileNames(dir.path()), std::vector<std::string>{"big.bin"});
}

TEST(File, WriteZerosWritesRealZeroBytes) {
  TempDir dir;
  const auto path = dir.path() / "z";
  auto f = File::Open(path, O_RDWR | O_CREAT);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->WriteAt(0, Bytes(std::string(3 << 20, 'x'))).ok());
  const uint64_t off = 100, len = (2 << 20) + 5;  // more than one 1 MiB chunk, unaligned
  ASSERT_TRUE(f->WriteZeros(off, len).ok());
  const auto bytes = ReadFileBytes(path);
  ASSERT_EQ(bytes.size(), 3u << 20);
  EXPECT_EQ(bytes[off - 1], 'x');
  EXPECT_EQ(bytes[off + len], 'x');
  size_t nonzero = 0;
  for (uint64_t i = off; i < off + len; ++i) nonzero += bytes[i] != 0;
  EXPECT_EQ(nonzero, 0u);
}

TEST(File, WriteZerosPastTheEndGrowsTheFileWithAllocatedBlocks) {
  TempDir dir;
  const auto path = dir.path() / "z";
  auto f = File::Open(path, O_RDWR | O_CREAT);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->WriteZeros(0, 256 * 1024).ok());
  ASSERT_TRUE(f->DataSync().ok());
  EXPECT_EQ(f->Size().value(), 256u * 1024);
  // Written zeros are not a hole: the blocks are allocated.
  EXPECT_EQ(::lseek(f->fd(), 0, SEEK_HOLE), 256 * 1024);
}

TEST(File, ReadAtReturnsWhatWriteAtWroteAndStopsAtTheEnd) {
  TempDir dir;
  auto f = File::Open(dir.path() / "rw", O_RDWR | O_CREAT);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->WriteAt(4, Bytes("abcdef")).ok());
  EXPECT_EQ(f->Size().value(), 10u);
  std::vector<uint8_t> buf(4);
  auto n = f->ReadAt(5, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "bcde");
  std::vector<uint8_t> tail(16);
  auto m = f->ReadAt(8, tail);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, 2u);
  EXPECT_EQ(tail[0], 'e');
  EXPECT_EQ(tail[1], 'f');
}

TEST(File, OpenOfAMissingFileFailsNamingThePath) {
  TempDir dir;
  const auto path = dir.path() / "missing.seg";
  auto f = File::Open(path, O_RDONLY);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kIOError);
  EXPECT_NE(f.status().message().find(path.string()), std::string::npos) << f.status().ToString();
}

TEST(File, MovedFromFileIsInvalidAndTheDescriptorMoves) {
  TempDir dir;
  auto opened = File::Open(dir.path() / "m", O_RDWR | O_CREAT);
  ASSERT_TRUE(opened.ok());
  File a = std::move(opened).value();
  const int fd = a.fd();
  File b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(b.fd(), fd);
  EXPECT_TRUE(b.WriteAt(0, Bytes("x")).ok());
}

TEST(MappedFile, MapSeesTheFileBytesAndLaterWrites) {
  TempDir dir;
  auto f = File::Open(dir.path() / "map", O_RDWR | O_CREAT);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->WriteAt(0, Bytes("0123456789")).ok());
  auto map = MappedFile::Map(*f, 10);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  ASSERT_EQ(map->size(), 10u);
  EXPECT_EQ(map->data()[3], '3');
  ASSERT_TRUE(f->WriteAt(3, Bytes("X")).ok());
  EXPECT_EQ(map->data()[3], 'X') << "a shared mapping sees pwrite through the page cache";
}

// Lowers this process's soft RLIMIT_NOFILE for the scope (the hard one stays), then puts it back.
class SoftOpenFileLimit {
 public:
  explicit SoftOpenFileLimit(rlim_t soft) {
    EXPECT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_), 0);
    const rlimit low{soft, saved_.rlim_max};
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0) << std::strerror(errno);
  }
  ~SoftOpenFileLimit() { EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &saved_), 0) << std::strerror(errno); }
  const rlimit& saved() const { return saved_; }

 private:
  rlimit saved_{};
};

TEST(OpenFileLimit, RaiseLiftsTheSoftLimitToTheHardOne) {
  const rlim_t soft = OpenFileCount().value() + 16;
  SoftOpenFileLimit low(soft);
  if (low.saved().rlim_max <= soft) GTEST_SKIP() << "the hard limit leaves no room to test a raise";
  const OpenFileLimit got = RaiseOpenFileLimit();
  EXPECT_EQ(got.before, soft);
  EXPECT_GT(got.now, soft);
  rlimit now{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, got.now);
  EXPECT_LE(now.rlim_cur, now.rlim_max);
  const OpenFileLimit again = RaiseOpenFileLimit();
  EXPECT_EQ(again.before, again.now) << "raised already: nothing changes";
}

TEST(OpenFileLimit, AnOpenPastTheLimitSaysTheLimitAndHowToRaiseIt) {
  TempDir dir;
  const rlim_t soft = OpenFileCount().value() + 2;
  std::vector<File> held;
  Status refused;
  {
    SoftOpenFileLimit low(soft);
    for (int i = 0; i < 256 && refused.ok(); ++i) {  // a descriptor is the lowest number free: holes fill first
      auto f = File::Open(dir.path() / ("f" + std::to_string(i)), O_RDWR | O_CREAT);
      if (f.ok()) {
        held.push_back(std::move(f).value());
      } else {
        refused = f.status();
      }
    }
    held.clear();  // before the limit goes back up
  }
  ASSERT_FALSE(refused.ok()) << "the limit never bit";
  EXPECT_EQ(refused.code(), Status::Code::kIOError);
  const std::string m = refused.message();
  EXPECT_NE(m.find("Too many open files"), std::string::npos) << m;
  EXPECT_NE(m.find("this process may open " + std::to_string(soft) + " files"), std::string::npos) << m;
  EXPECT_NE(m.find("one open file per segment"), std::string::npos) << m;
  EXPECT_NE(m.find("ulimit -n"), std::string::npos) << m;
  EXPECT_NE(m.find("LimitNOFILE="), std::string::npos) << m;
}

}  // namespace
}  // namespace esd::storage
