// The writer thread: a full disk, readers racing group commits, and segment roll-over
// under concurrent appends.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <chrono>
#include <mutex>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "storage/store.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvents;
using testing::SmallOptions;
using testing::TempDir;

// A tmpfs of `bytes`, mounted for the lifetime of the object: a disk that really fills up.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(size_t bytes) {
    const std::string opts = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  std::filesystem::path path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes until the filesystem is full; returns the ballast file's path.
std::filesystem::path FillUp(const std::filesystem::path& dir) {
  const auto path = dir / "ballast";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::vector<char> block(4096, 'b');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
  }
  std::fclose(f);
  return path;
}

// Whether, within 10 s, this process has exactly `count` threads of each of `names`. A
// joined thread leaves /proc/self/task a little after its join returns (the kernel clears
// its id first and reaps it later), so its going is waited for, not assumed.
bool ThreadsNamedBecome(std::initializer_list<const char*> names, size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    const auto now = testing::ThreadNames();
    if (std::all_of(names.begin(), names.end(), [&](const char* n) { return now.count(n) == count; })) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST(Writer, AnOpenStoresThreadsAreNamedAndGoWithIt) {
  // Threads of earlier tests' stores in this process may still be on their way out.
  ASSERT_TRUE(ThreadsNamedBecome({"esd-writer", "esd-prealloc", "esd-index"}, 0));
  {
    TempDir dir;
    auto store = Store::Open(dir.path() / "data", SmallOptions());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // Named by the thread that starts them: there as soon as the open returns.
    const auto open = testing::ThreadNames();
    for (const char* name : {"esd-writer", "esd-prealloc", "esd-index"}) EXPECT_EQ(open.count(name), 1u) << name;
  }
  EXPECT_TRUE(ThreadsNamedBecome({"esd-writer", "esd-prealloc", "esd-index"}, 0))
      << "a closed store's threads are still there";
}

TEST(Writer, FullDiskFailsTheAppendWithOutOfSpaceAndWritesResumeWhenSpaceReturns) {
  SmallFilesystem fs(1 << 20);
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << fs.error() << "); needs root";
  const auto dir = fs.path() / "data";
  auto opened = Store::Open(dir, SmallOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto store = std::move(opened).value();
  // The store has its first segment and (soon) a spare; take the rest of the space.
  ASSERT_TRUE(store->AppendSync("warm", ExpectedVersion::Any(), MakeEvents("warm", 0, 1)).ok());
  const auto ballast = FillUp(fs.path());

  uint64_t version = 0;
  AppendResult r = Status::Closed("");
  for (int i = 0; i < 1000; ++i) {  // the first segment, then the spare, fill up
    r = store->AppendSync("full", ExpectedVersion::Any(), MakeEvents("full", version, 4, 0, 500));
    if (!r.ok()) break;
    version += 4;
  }
  ASSERT_FALSE(r.ok()) << "the disk never filled";
  EXPECT_EQ(r.status().code(), Status::Code::kOutOfSpace) << r.status().ToString();
  EXPECT_TRUE(r.status().IsRetryable());
  EXPECT_NE(r.status().message().find("free disk space"), std::string::npos) << r.status().message();

  const GlobalPosition durable = store->DurablePosition();
  auto again = store->AppendSync("full", ExpectedVersion::Any(), MakeEvents("full", version, 4, 0, 500));
  EXPECT_EQ(again.status().code(), Status::Code::kOutOfSpace) << "still full";
  EXPECT_EQ(store->DurablePosition(), durable) << "a failed append leaves nothing behind";

  auto all = store->ReadAll(GlobalPosition(0), 100000);
  ASSERT_TRUE(all.ok()) << "reads keep working";
  EXPECT_EQ(all->size(), durable.value);
  auto stream = store->ReadStream("full", StreamVersion(0), 100000);
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ(stream->size(), version);

  std::filesystem::remove(ballast);
  auto resumed = store->AppendSync("full", ExpectedVersion::Exact(StreamVersion(version - 1)),
                                   MakeEvents("full", version, 4, 0, 500));
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->first_position, durable);

  store.reset();
  auto reopened = Store::Open(dir, SmallOptions());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->DurablePosition(), durable + 4);
}

TEST(Writer, ReadersRacingAppendsSeeADensePrefixUpToTheDurablePosition) {
  TempDir dir;
  auto opened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(opened.ok());
  auto store = std::move(opened).value();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      const uint64_t before = store->DurablePosition().value;
      uint64_t expect = 0;
      auto n = store->ReadAll(GlobalPosition(0), ~size_t{0}, [&](const EventView& e) {
        EXPECT_EQ(e.position.value, expect++);
        return true;
      });
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      EXPECT_GE(*n, before) << "everything durable before the read is visible";
      EXPECT_LE(*n, store->DurablePosition().value) << "nothing past the durable position is visible";
      ++reads;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      const std::string s = "w-" + std::to_string(w);
      for (uint64_t i = 0; i < 150; ++i) {
        auto expected = i == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(StreamVersion(i - 1));
        auto r = store->AppendSync(s, expected, MakeEvents(s, i, 1, 0, 300));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_LT(r->last_position, store->DurablePosition()) << "acknowledged only once durable";
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  reader.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GE(store->stats().segments_sealed, 3u) << "segments rolled over while readers ran";
  for (int w = 0; w < 4; ++w) {
    auto events = store->ReadStream("w-" + std::to_string(w), StreamVersion(0), 1000);
    ASSERT_TRUE(events.ok());
    EXPECT_EQ(events->size(), 150u);
  }
}

TEST(Writer, AppendFromACallbackJoinsTheNextGroupWhole) {
  // 16 appenders, each submitting its next append from the previous one's callback: the
  // callbacks run on the writer thread before it drains the queue, so every group after
  // the first carries all 16.
  TempDir dir;
  auto opened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(opened.ok());
  Store& store = **opened;
  constexpr int kAppenders = 16;
  constexpr int kRounds = 20;
  std::atomic<int> finished{0};
  std::function<void(int, int)> submit = [&](int appender, int round) {
    const std::string s = "chain-" + std::to_string(appender);
    store.Append(s, ExpectedVersion::Any(), MakeEvents(s, round, 1), [&, appender, round](AppendResult r) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (round + 1 < kRounds) {
        submit(appender, round + 1);
      } else {
        ++finished;
      }
    });
  };
  {
    // Hold the writer back until every chain has its first append queued.
    std::promise<void> release;
    std::shared_future<void> gate = release.get_future().share();
    store.Append("gate", ExpectedVersion::Any(), MakeEvents("gate", 0, 1), [gate](AppendResult) { gate.wait(); });
    for (int a = 0; a < kAppenders; ++a) submit(a, 0);
    release.set_value();
  }
  while (finished.load() < kAppenders) std::this_thread::yield();
  const StoreStats stats = store.stats();
  EXPECT_EQ(stats.appends, uint64_t{kAppenders * kRounds + 1});
  EXPECT_LE(stats.groups, uint64_t{kRounds + 2}) << "each round is one group, not one per appender";
}

TEST(Writer, CallbacksOfAClosingStoreStillRun) {
  TempDir dir;
  std::atomic<int> ok{0}, done{0};
  {
    auto opened = Store::Open(dir.path(), SmallOptions());
    ASSERT_TRUE(opened.ok());
    for (int i = 0; i < 200; ++i) {
      const std::string s = "c-" + std::to_string(i);
      (*opened)->Append(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1), [&](AppendResult r) {
        ok += r.ok();
        ++done;
      });
    }
  }  // destroying the store finishes what was queued
  EXPECT_EQ(done.load(), 200);
  EXPECT_EQ(ok.load(), 200);
  auto reopened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->DurablePosition(), GlobalPosition(200));
}


// Holds the writer inside the fdatasync of a group until Open() is called: the queue
// behind it then only grows, which is what admission control is about.
class WriterGate {
 public:
  WriterGate()
      : faults_([this](FileOp op, const std::filesystem::path& path) {
          if (op == FileOp::kSync && path.extension() == ".seg") {
            std::unique_lock lock(mu_);
            if (!opened_) {
              held_ = true;
              cv_.notify_all();
              cv_.wait(lock, [&] { return opened_; });
            }
          }
          return InjectedFault{};
        }) {}
  ~WriterGate() { Open(); }
  void WaitUntilHeld() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    opened_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, opened_ = false;
  testing::ScriptedFaults faults_;  // last: removed first
};

TEST(Writer, AppendsPastTheQueueBoundAreRefusedAsOverloadedAndWriteNothing) {
  TempDir dir;
  Options o = SmallOptions();
  o.max_queued_bytes = 8 * 1024;
  auto opened = Store::Open(dir.path(), o);
  ASSERT_TRUE(opened.ok());
  Store& store = **opened;
  WriterGate gate;
  std::atomic<int> ok{0}, done{0};
  auto count = [&](AppendResult r) {
    ok += r.ok();
    ++done;
  };
  store.Append("first", ExpectedVersion::Any(), MakeEvents("first", 0, 1), count);
  gate.WaitUntilHeld();  // the writer is in that group's fdatasync: nothing leaves the queue
  // 1 KiB appends queue up to the bound; the one past it is answered at once, on this thread.
  int queued = 0;
  std::optional<AppendResult> refused;
  for (int i = 0; i < 100 && !refused; ++i) {
    store.Append("q", ExpectedVersion::Any(), MakeEvents("q", 0, 1, i, 1000), [&](AppendResult r) {
      if (r.ok() || r.status().code() != Status::Code::kOverloaded) return count(std::move(r));
      refused = std::move(r);
    });
    if (!refused) ++queued;
  }
  ASSERT_TRUE(refused.has_value()) << "the queue took 100 appends of 1 KiB under an 8 KiB bound";
  EXPECT_GE(queued, 5);
  EXPECT_LE(queued, 8);
  EXPECT_TRUE(refused->status().IsRetryable());
  EXPECT_NE(refused->status().message().find("retry"), std::string::npos) << refused->status().message();
  gate.Open();
  while (done.load() < 1 + queued) std::this_thread::yield();  // every queued append answered
  EXPECT_EQ(ok.load(), 1 + queued);
  ASSERT_TRUE(store.AppendSync("after", ExpectedVersion::Any(), MakeEvents("after", 0, 1)).ok())
      << "once the writer has drained the queue, appends are taken again";
  EXPECT_EQ(store.GetStreamInfo("q")->event_count, static_cast<uint64_t>(queued)) << "the refused append wrote nothing";
}

TEST(Writer, OneAppendLargerThanTheQueueBoundIsTakenWhenNothingElseIsQueued) {
  TempDir dir;
  Options o = SmallOptions();
  o.max_queued_bytes = 1024;
  auto opened = Store::Open(dir.path(), o);
  ASSERT_TRUE(opened.ok());
  auto r = (*opened)->AppendSync("big", ExpectedVersion::Any(), MakeEvents("big", 0, 4, 0, 2000));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

// ---- Faults on the seal path (issue 9, item 8) ----

bool EndsWith(const std::filesystem::path& p, std::string_view suffix) {
  const std::string s = p.filename().string();
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Appends single 1 KiB events to "w" until `segments` segment files exist; returns the
// results of every append.
std::vector<AppendResult> AppendUntilSegments(Store& store, const std::filesystem::path& dir, size_t segments) {
  std::vector<AppendResult> results;
  uint64_t next = 0;
  while (testing::SegmentFiles(dir).size() < segments && results.size() < 10'000) {
    results.push_back(store.AppendSync("w", ExpectedVersion::Any(), MakeEvents("w", next, 1, 0, 1000)));
    if (results.back().ok()) ++next;
  }
  return results;
}

TEST(WriterFaults, ARollWhoseDirectorySyncFailsLeavesNoSegmentBehindAndTheStoreReopens) {
  TempDir dir;
  uint64_t acked = 0;
  {
    auto store = Store::Open(dir.path(), SmallOptions());
    ASSERT_TRUE(store.ok());
    bool failed = false;
    std::optional<std::thread::id> activating;
    // Activate renames spare-N.ready to its segment name, then syncs the directory: fail that
    // sync, on the thread that renamed (the preallocator syncs the same directory too).
    testing::ScriptedFaults faults([&](FileOp op, const std::filesystem::path& path) {
      if (op == FileOp::kRename && EndsWith(path, ".ready")) activating = std::this_thread::get_id();
      if (op == FileOp::kSyncDir && activating == std::this_thread::get_id() && !failed) {
        failed = true;
        return InjectedFault{EIO};
      }
      return InjectedFault{};
    });
    std::vector<AppendResult> results = AppendUntilSegments(**store, dir.path(), 3);
    ASSERT_TRUE(failed);
    size_t errors = 0;
    for (const auto& r : results) {
      if (r.ok()) ++acked;
      else ++errors;
    }
    EXPECT_EQ(errors, 1u) << "only the append that needed the new segment fails";
  }
  auto reopened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto events = (*reopened)->ReadStream("w", StreamVersion(0), 100'000);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), acked);
}

TEST(WriterFaults, AnIndexFileThatFailsToWriteIsWrittenBeforeTheNextOne) {
  TempDir dir;
  {
    auto store = Store::Open(dir.path(), SmallOptions());
    ASSERT_TRUE(store.ok());
    bool failed = false;
    testing::ScriptedFaults faults([&](FileOp op, const std::filesystem::path& path) {
      if (op == FileOp::kOpen && EndsWith(path, ".idx.tmp") && !failed) {
        failed = true;
        return InjectedFault{ENOSPC};
      }
      return InjectedFault{};
    });
    for (const auto& r : AppendUntilSegments(**store, dir.path(), 4)) ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(failed);
  }  // closing finishes the index jobs
  const auto segments = testing::SegmentFiles(dir.path());
  for (size_t k = 0; k + 1 < segments.size(); ++k) {
    auto idx = segments[k];
    idx.replace_extension(".idx");
    EXPECT_TRUE(std::filesystem::exists(idx)) << idx << ": one failed write left later segments without an index";
  }
}

TEST(WriterFaults, OpenMakesEachDirectoryItCreatesDurable) {
  TempDir dir;
  std::vector<std::filesystem::path> synced;
  const auto data = dir.path() / "a" / "data";
  {
    testing::ScriptedFaults faults([&](FileOp op, const std::filesystem::path& path) {
      if (op == FileOp::kSyncDir) synced.push_back(path);
      return InjectedFault{};
    });
    ASSERT_TRUE(Store::Open(data, SmallOptions()).ok());
  }
  auto synced_dir = [&](const std::filesystem::path& p) { return std::count(synced.begin(), synced.end(), p) > 0; };
  for (const auto& p : {dir.path(), dir.path() / "a", data, data / "segments", data / "snapshots"}) {
    EXPECT_TRUE(synced_dir(p)) << p << " was never synced";
  }
}

TEST(WriterFaults, SyncMakesEveryWrittenEventDurableInEveryMode) {
  TempDir dir;
  Options o = SmallOptions();
  o.durability = DurabilityMode{Durability::kNever, {}};
  auto store = Store::Open(dir.path(), o);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->AppendSync("n", ExpectedVersion::Any(), MakeEvents("n", 0, 3)).ok());
  EXPECT_EQ((*store)->DurablePosition(), GlobalPosition(3));
  EXPECT_EQ((*store)->SyncedPosition(), GlobalPosition(0)) << "never: nothing is synced yet";
  ASSERT_TRUE((*store)->Sync().ok());
  EXPECT_EQ((*store)->SyncedPosition(), GlobalPosition(3));
}

// Records what the store tells its EventListener (from the writer thread).
class RecordingListener final : public EventListener {
 public:
  void OnOutOfSpace(const Status& why) override { Add("out-of-space: " + why.ToString()); }
  void OnSpaceAgain() override { Add("space-again"); }
  void OnSlowSync(uint64_t) override { Add("slow-sync"); }
  void OnWritesStopped(const Status& why) override { Add("writes-stopped: " + why.ToString()); }
  std::vector<std::string> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  void Add(std::string e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  std::mutex mu_;
  std::vector<std::string> events_;
};

// Fails the next `n` pwrites of the store's first segment with `error`; the rest go ahead.
class FailNextSegmentWrites {
 public:
  explicit FailNextSegmentWrites(std::string file)
      : file_(std::move(file)), faults_([this](FileOp op, const std::filesystem::path& path) {
          if (op == FileOp::kWrite && path.filename() == file_ && left_.load() > 0) {
            --left_;
            return InjectedFault{error_.load()};
          }
          return InjectedFault{};
        }) {}
  void Arm(int n, int error) {
    error_ = error;
    left_ = n;
  }

 private:
  const std::string file_;
  std::atomic<int> left_{0}, error_{0};
  testing::ScriptedFaults faults_;  // last: removed first
};

TEST(WriterEvents, TheListenerHearsADiskFullOnceAndWhenSpaceIsBack) {
  TempDir dir;
  RecordingListener listener;
  Options o = SmallOptions();
  o.listener = &listener;
  auto store = Store::Open(dir.path(), o).value();
  FailNextSegmentWrites faults(testing::SegmentFiles(dir.path())[0].filename().string());
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  for (uint64_t i = 0; i < 3; ++i) {
    faults.Arm(1, ENOSPC);  // the group's write fails; zeroing what it may have left works
    EXPECT_EQ(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 1, 1)).status().code(),
              Status::Code::kOutOfSpace);
  }
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 1, 1)).ok());
  store.reset();  // the writer has told everything once it has ended
  const auto events = listener.Events();
  ASSERT_EQ(events.size(), 2u) << ::testing::PrintToString(events);
  EXPECT_EQ(events[0].rfind("out-of-space: ", 0), 0u) << events[0];
  EXPECT_EQ(events[1], "space-again");
}

TEST(WriterEvents, ASyncAtOrAboveTheThresholdIsToldAsSlow) {
  TempDir dir;
  RecordingListener listener;
  Options o = SmallOptions();
  o.listener = &listener;
  o.slow_sync_micros = 0;  // every sync is at least 0 µs: no timing in the test
  auto store = Store::Open(dir.path(), o).value();
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 1, 1)).ok());
  store.reset();
  EXPECT_EQ(listener.Events(), (std::vector<std::string>{"slow-sync", "slow-sync"}));
}

TEST(WriterEvents, NoSlowSyncIsToldBelowTheThresholdOrWithoutFsync) {
  TempDir dir;
  RecordingListener listener;
  Options o = SmallOptions();
  o.listener = &listener;
  o.slow_sync_micros = UINT64_MAX;
  auto store = Store::Open(dir.path(), o).value();
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  store.reset();
  o.slow_sync_micros = 0;
  o.durability = DurabilityMode{Durability::kNever, {}};
  store = Store::Open(dir.path(), o).value();
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 1, 1)).ok());
  store.reset();
  EXPECT_TRUE(listener.Events().empty()) << ::testing::PrintToString(listener.Events());
}

TEST(WriterEvents, AStopOfWritesIsToldOnce) {
  TempDir dir;
  RecordingListener listener;
  Options o = SmallOptions();
  o.listener = &listener;
  auto store = Store::Open(dir.path(), o).value();
  FailNextSegmentWrites faults(testing::SegmentFiles(dir.path())[0].filename().string());
  faults.Arm(1, EIO);
  EXPECT_FALSE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  EXPECT_FALSE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  store.reset();
  const auto events = listener.Events();
  ASSERT_EQ(events.size(), 1u) << ::testing::PrintToString(events);
  EXPECT_EQ(events[0].rfind("writes-stopped: ", 0), 0u) << events[0];
  EXPECT_NE(events[0].find("restart to recover"), std::string::npos) << events[0];
}

}  // namespace
}  // namespace esd::storage

namespace esd::storage {
namespace {

// A script that fails the next pwrite of a segment file with `error` once `armed` is set,
// and disarms. (The writer then zeroes what it may have written: that write goes ahead.)
testing::ScriptedFaults::Script FailNextSegmentWrite(std::atomic<bool>& armed, int error) {
  return [&armed, error](FileOp op, const std::filesystem::path& path) {
    if (op == FileOp::kWrite && path.extension() == ".seg" && armed.exchange(false)) return InjectedFault{error};
    return InjectedFault{};
  };
}

TEST(WriterState, OutOfSpaceIsReportedUntilAnAppendIsWrittenAgain) {
  TempDir dir;
  auto opened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto store = std::move(opened).value();
  EXPECT_TRUE(store->write_state().out_of_space.ok());
  std::atomic<bool> full{true};
  testing::ScriptedFaults faults(FailNextSegmentWrite(full, ENOSPC));

  auto r = store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1));
  ASSERT_EQ(r.status().code(), Status::Code::kOutOfSpace) << r.status().ToString();
  WriteState state = store->write_state();
  EXPECT_EQ(state.out_of_space.code(), Status::Code::kOutOfSpace);
  EXPECT_TRUE(state.failed.ok()) << "out of space is retryable, not a failure: " << state.failed.ToString();

  // A group that writes nothing (a wrong expected version) learns nothing about space.
  auto conflict = store->AppendSync("s", ExpectedVersion::Exact(StreamVersion(7)), MakeEvents("s", 0, 1));
  ASSERT_EQ(conflict.status().code(), Status::Code::kWrongExpectedVersion) << conflict.status().ToString();
  EXPECT_EQ(store->write_state().out_of_space.code(), Status::Code::kOutOfSpace);

  ASSERT_FALSE(full) << "the fault was met";
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  state = store->write_state();
  EXPECT_TRUE(state.out_of_space.ok()) << state.out_of_space.ToString();
  EXPECT_TRUE(state.failed.ok());
}

TEST(WriterState, AnIOErrorIsReportedAsFailedForGood) {
  TempDir dir;
  auto opened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto store = std::move(opened).value();
  EXPECT_TRUE(store->write_state().failed.ok());
  std::atomic<bool> broken{true};
  testing::ScriptedFaults faults(FailNextSegmentWrite(broken, EIO));

  auto r = store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1));
  ASSERT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
  EXPECT_EQ(store->write_state().failed.code(), Status::Code::kIOError);

  ASSERT_FALSE(broken) << "the fault was met";
  EXPECT_FALSE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 1)).ok());
  const WriteState state = store->write_state();
  EXPECT_EQ(state.failed.code(), Status::Code::kIOError) << "no write is taken until the store is reopened";
  EXPECT_NE(state.failed.message().find("restart"), std::string::npos) << state.failed.message();
  EXPECT_TRUE(state.out_of_space.ok());
}

}  // namespace
}  // namespace esd::storage
