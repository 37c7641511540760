// The store's helper threads: the preallocator hands out zero-filled spare segments, and the
// task queue runs jobs in order, finishing the queued ones when it is destroyed.
#include "storage/background.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "storage/segment.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::ReadFileBytes;
using testing::TempDir;

constexpr uint64_t kSegmentSize = 64 * 1024;

bool AllZero(const std::vector<uint8_t>& bytes) {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

TEST(Preallocator, TakeReturnsAZeroFilledFileOfTheSegmentSize) {
  TempDir dir;
  Preallocator pre(dir.path(), kSegmentSize, kSegmentSize);
  auto spare = pre.Take();
  ASSERT_TRUE(spare.ok()) << spare.status().ToString();
  EXPECT_TRUE(spare->file.valid());
  EXPECT_EQ(spare->path.parent_path(), dir.path());
  EXPECT_EQ(spare->file.Size().value(), kSegmentSize);
  const auto bytes = ReadFileBytes(spare->path);
  ASSERT_EQ(bytes.size(), kSegmentSize);
  EXPECT_TRUE(AllZero(bytes));
}

TEST(Preallocator, TheSpareIsOpenForWriting) {
  TempDir dir;
  Preallocator pre(dir.path(), kSegmentSize, kSegmentSize);
  auto spare = pre.Take();
  ASSERT_TRUE(spare.ok());
  const uint8_t byte = 0x5a;
  ASSERT_TRUE(spare->file.WriteAt(kSegmentSize - 1, std::span(&byte, 1)).ok());
  EXPECT_EQ(ReadFileBytes(spare->path).back(), 0x5a);
}

TEST(Preallocator, EachTakeHandsOverADifferentFile) {
  TempDir dir;
  Preallocator pre(dir.path(), kSegmentSize, kSegmentSize);
  std::set<std::filesystem::path> paths;
  for (int i = 0; i < 4; ++i) {
    auto spare = pre.Take();
    ASSERT_TRUE(spare.ok()) << spare.status().ToString();
    EXPECT_TRUE(paths.insert(spare->path).second) << spare->path << " handed out twice";
    // The caller owns a taken spare: scribbling on it must not reach the next one.
    const uint8_t byte = 0xff;
    ASSERT_TRUE(spare->file.WriteAt(0, std::span(&byte, 1)).ok());
  }
  auto next = pre.Take();
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(AllZero(ReadFileBytes(next->path)));
  for (const auto& p : paths) EXPECT_EQ(ReadFileBytes(p).at(0), 0xff) << p;
}

TEST(Preallocator, FailureToCreateTheSpareIsReported) {
  TempDir dir;
  Preallocator pre(dir.path() / "missing", kSegmentSize, kSegmentSize);
  auto spare = pre.Take();
  ASSERT_FALSE(spare.ok());
  EXPECT_EQ(spare.status().code(), Status::Code::kIOError) << spare.status().ToString();
  EXPECT_NE(spare.status().message().find("missing"), std::string::npos) << spare.status().ToString();
}

TEST(Preallocator, DestroyingWithoutTakingLeavesAtMostOneCompleteSpare) {
  TempDir dir;
  { Preallocator pre(dir.path(), kSegmentSize, kSegmentSize); }
  // The spare may or may not have been made; if it was, it is complete.
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(std::filesystem::file_size(e.path()), kSegmentSize) << e.path();
  }
  Preallocator again(dir.path(), kSegmentSize, kSegmentSize);
  EXPECT_TRUE(again.Take().ok());
}

ino_t Inode(const std::filesystem::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(Preallocator, AReadySpareOfTheRightSizeIsReusedAfterARestart) {
  TempDir dir;
  const auto left = dir.path() / "spare-5.ready";
  ASSERT_TRUE(CreateZeroFilledFile(left, kSegmentSize).ok());
  const ino_t inode = Inode(left);
  Preallocator pre(dir.path(), kSegmentSize, kSegmentSize);
  auto spare = pre.Take();
  ASSERT_TRUE(spare.ok()) << spare.status().ToString();
  struct stat st;
  ASSERT_EQ(::fstat(spare->file.fd(), &st), 0);
  EXPECT_EQ(st.st_ino, inode) << "the spare left by the last run is handed out, not made anew";
  EXPECT_NE(spare->path, left) << "and under a name later spares will not reuse";
}

TEST(Preallocator, LeftoverSparesOfAnotherSizeOrHalfMadeAreRemoved) {
  TempDir dir;
  ASSERT_TRUE(CreateZeroFilledFile(dir.path() / "spare-1.ready", kSegmentSize / 2).ok());
  ASSERT_TRUE(CreateZeroFilledFile(dir.path() / "spare-2.tmp", kSegmentSize).ok());
  Preallocator pre(dir.path(), kSegmentSize, kSegmentSize);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "spare-1.ready"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "spare-2.tmp"));
  auto spare = pre.Take();
  ASSERT_TRUE(spare.ok());
  EXPECT_EQ(spare->file.Size().value(), kSegmentSize);
}

TEST(TaskQueue, RunsJobsInTheOrderTheyWerePosted) {
  std::mutex mu;
  std::vector<int> ran;
  std::promise<void> last_done;
  {
    TaskQueue queue("test-queue");
    for (int i = 0; i < 100; ++i) {
      queue.Post([&, i] {
        std::lock_guard lock(mu);
        ran.push_back(i);
      });
    }
    queue.Post([&] { last_done.set_value(); });
    last_done.get_future().wait();
    std::lock_guard lock(mu);
    ASSERT_EQ(ran.size(), 100u) << "every job before the last had run when it ran";
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[i], i);
}

TEST(TaskQueue, DestructorRunsTheJobsAlreadyQueued) {
  std::vector<int> ran;  // only the queue's thread touches it until the queue is gone
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  {
    TaskQueue queue("test-queue");
    // The first job holds the thread, so the others are still queued when we stop.
    queue.Post([&ran, released] {
      released.wait();
      ran.push_back(0);
    });
    for (int i = 1; i <= 20; ++i) queue.Post([&ran, i] { ran.push_back(i); });
    release.set_value();
  }  // ~TaskQueue
  ASSERT_EQ(ran.size(), 21u);
  for (int i = 0; i <= 20; ++i) EXPECT_EQ(ran[i], i);
}

std::string ThisThreadsName() {
  char name[16] = {};
  EXPECT_EQ(::pthread_getname_np(::pthread_self(), name, sizeof(name)), 0);
  return name;
}

TEST(TaskQueue, ItsThreadCarriesTheNameItWasGivenCutToFifteenCharacters) {
  std::promise<std::string> seen;
  {
    TaskQueue queue("esd-index");
    queue.Post([&] { seen.set_value(ThisThreadsName()); });
  }
  EXPECT_EQ(seen.get_future().get(), "esd-index");
  std::promise<std::string> cut;
  {
    TaskQueue queue("a-name-longer-than-the-kernel-keeps");
    queue.Post([&] { cut.set_value(ThisThreadsName()); });
  }
  EXPECT_EQ(cut.get_future().get(), "a-name-longer-t");
}

TEST(TaskQueue, JobsMayPostMoreJobs) {
  std::vector<int> ran;
  std::promise<void> done;
  TaskQueue queue("test-queue");
  queue.Post([&] {
    ran.push_back(1);
    queue.Post([&] {
      ran.push_back(2);
      done.set_value();
    });
  });
  done.get_future().wait();
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

uint64_t AllocatedBytes(const std::filesystem::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

TEST(Preallocator, FillsTheActiveSegmentOnlyABoundedStepAheadOfTheWriter) {
  TempDir dir;
  constexpr uint64_t kSize = 8 << 20, kFill = 256 << 10;
  const auto path = dir.path() / "active.seg";
  ASSERT_TRUE(CreateSegmentFile(path, kSize, 0).ok());
  EXPECT_EQ(std::filesystem::file_size(path), kSize) << "full length from the start";
  Preallocator pre(dir.path(), kSize, kFill);
  pre.Follow(path, kSize, 0, 0);
  ASSERT_TRUE(pre.WaitFilled(kFill / 2).ok());
  EXPECT_GE(pre.filled(), kFill / 2);
  EXPECT_LT(AllocatedBytes(path), kSize / 4) << "not the whole segment";
  pre.WriterAt(kSize / 2);
  ASSERT_TRUE(pre.WaitFilled(kSize / 2 + kFill / 2).ok());
  EXPECT_LT(AllocatedBytes(path), kSize / 2 + kSize / 4) << "still bounded past the writer";
  const auto bytes = ReadFileBytes(path);
  EXPECT_TRUE(AllZero(bytes));
}

TEST(Preallocator, NeverWritesBelowWhatItReportedFilled) {
  TempDir dir;
  constexpr uint64_t kSize = 4 << 20, kFill = 128 << 10;
  const auto path = dir.path() / "active.seg";
  ASSERT_TRUE(CreateSegmentFile(path, kSize, kFill).ok());
  Preallocator pre(dir.path(), kSize, kFill);
  pre.Follow(path, kSize, kFill, 0);
  auto writer = File::Open(path, O_RDWR);
  ASSERT_TRUE(writer.ok());
  // The writer's bytes, always below filled(), as the store's writer does.
  std::vector<uint8_t> data(kFill / 4, 0xab);
  for (uint64_t end = 0; end + data.size() <= kSize; end += data.size()) {
    ASSERT_TRUE(pre.WaitFilled(end + data.size()).ok());
    ASSERT_TRUE(writer->WriteAt(end, data).ok());
    pre.WriterAt(end + data.size());
  }
  const auto bytes = ReadFileBytes(path);
  ASSERT_EQ(bytes.size(), kSize);
  EXPECT_EQ(std::count(bytes.begin(), bytes.end(), 0xab), static_cast<long>(kSize)) << "no zeros over the writer's bytes";
}

TEST(Preallocator, NoSpareIsMadeBeforeTheActiveSegmentIsHalfFull) {
  TempDir dir;
  constexpr uint64_t kSize = 4 << 20, kFill = 128 << 10;
  const auto path = dir.path() / "active.seg";
  ASSERT_TRUE(CreateSegmentFile(path, kSize, kFill).ok());
  Preallocator pre(dir.path(), kSize, kFill);
  pre.Follow(path, kSize, kFill, 0);
  pre.WriterAt(kSize / 2 - kFill);
  ASSERT_TRUE(pre.WaitFilled(kSize / 2).ok());  // the thread has run, and found no spare wanted
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_NE(f.path().filename().string().rfind("spare-", 0), 0u) << f.path();
  }
  auto spare = pre.Take();  // a roll before half (a large append) still gets one
  ASSERT_TRUE(spare.ok()) << spare.status().ToString();
  EXPECT_EQ(spare->file.Size().value(), kSize);
  EXPECT_GE(AllocatedBytes(spare->path), kFill) << "its first step zero-filled";
  EXPECT_LT(AllocatedBytes(spare->path), kSize / 2);
}

TEST(Preallocator, AFullDiskWhileFillingIsReportedToTheWaitingWriter) {
  TempDir dir;
  constexpr uint64_t kSize = 4 << 20, kFill = 128 << 10;
  const auto path = dir.path() / "active.seg";
  ASSERT_TRUE(CreateSegmentFile(path, kSize, kFill).ok());
  struct NoSpaceForFill final : FileFaults {
    InjectedFault Before(FileOp op, const std::filesystem::path& p) override {
      return op == FileOp::kWrite && p.extension() == ".seg" ? InjectedFault{ENOSPC, false} : InjectedFault{};
    }
  } faults;
  Preallocator pre(dir.path(), kSize, kFill);
  pre.Follow(path, kSize, kFill, 0);
  SetFileFaults(&faults);
  const Status s = pre.WaitFilled(kFill * 2);
  SetFileFaults(nullptr);
  EXPECT_EQ(s.code(), Status::Code::kOutOfSpace) << s.ToString();
  EXPECT_TRUE(pre.WaitFilled(kFill * 2).ok()) << "tried again once space is back";
}

}  // namespace
}  // namespace esd::storage
