// The store's helper threads: the preallocator hands out zero-filled spare segments, and the
// task queue runs jobs in order, finishing the queued ones when it is destroyed.
#include "storage/background.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <future>
#include <mutex>
#include <set>
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
  Preallocator pre(dir.path(), kSegmentSize);
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
  Preallocator pre(dir.path(), kSegmentSize);
  auto spare = pre.Take();
  ASSERT_TRUE(spare.ok());
  const uint8_t byte = 0x5a;
  ASSERT_TRUE(spare->file.WriteAt(kSegmentSize - 1, std::span(&byte, 1)).ok());
  EXPECT_EQ(ReadFileBytes(spare->path).back(), 0x5a);
}

TEST(Preallocator, EachTakeHandsOverADifferentFile) {
  TempDir dir;
  Preallocator pre(dir.path(), kSegmentSize);
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
  Preallocator pre(dir.path() / "missing", kSegmentSize);
  auto spare = pre.Take();
  ASSERT_FALSE(spare.ok());
  EXPECT_EQ(spare.status().code(), Status::Code::kIOError) << spare.status().ToString();
  EXPECT_NE(spare.status().message().find("missing"), std::string::npos) << spare.status().ToString();
}

TEST(Preallocator, DestroyingWithoutTakingLeavesAtMostOneCompleteSpare) {
  TempDir dir;
  { Preallocator pre(dir.path(), kSegmentSize); }
  // The spare may or may not have been made; if it was, it is complete.
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(std::filesystem::file_size(e.path()), kSegmentSize) << e.path();
  }
  Preallocator again(dir.path(), kSegmentSize);
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
  Preallocator pre(dir.path(), kSegmentSize);
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
  Preallocator pre(dir.path(), kSegmentSize);
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
    TaskQueue queue;
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
    TaskQueue queue;
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

TEST(TaskQueue, JobsMayPostMoreJobs) {
  std::vector<int> ran;
  std::promise<void> done;
  TaskQueue queue;
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

}  // namespace
}  // namespace esd::storage
