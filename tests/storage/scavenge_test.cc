// Behaviour of scavenge (storage/scavenge.h): removed events' bytes leave the files, kept
// events read back identical, the store stays verifiable and appendable, and the space
// comes back.
#include "storage/scavenge.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "storage/format.h"
#include "storage/verify.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvent;
using testing::MakeEvents;
using testing::SmallOptions;
using testing::TempDir;

constexpr std::string_view kSecret = "CUSTOMER-7f3a9e-SECRET";

// Tells a test when a scavenge has ended, without polling.
class FinishedListener : public EventListener {
 public:
  void OnScavengeStarted(const ScavengeStatus&) override { ++started; }
  void OnScavengeFinished(const ScavengeStatus& s) override {
    std::lock_guard lock(mu_);
    finished.push_back(s);
    cv_.notify_all();
  }
  ScavengeStatus WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return finished.size() >= n; });
    return finished[n - 1];
  }
  std::atomic<int> started{0};
  std::vector<ScavengeStatus> finished;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

struct Fixture {
  TempDir dir;
  FinishedListener listener;
  Options options;
  std::unique_ptr<Store> store;
  size_t scavenges = 0;

  explicit Fixture(Options o = SmallOptions()) : options(o) {
    options.listener = &listener;
    options.scavenge_retire_after = std::chrono::milliseconds(0);
    Reopen();
  }
  void Reopen() {
    store.reset();
    auto s = Store::Open(dir.path(), options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(s).value();
  }
  ScavengeStatus Scavenge() {
    Status s = store->StartScavenge();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return listener.WaitFor(++scavenges);
  }
};

EventData SecretEvent(const std::string& stream, uint64_t version) {
  EventData e = MakeEvent(stream, version, 7, 100);
  e.data = std::string(kSecret) + "-" + stream + "-" + std::to_string(version) + std::string(200, 's');
  return e;
}

// Appends `rounds` of one batch to each of `keep` kept streams and `gone` streams with the
// secret payload, interleaved, so that every segment holds both.
void Fill(Store& store, int rounds, int keep, int gone) {
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < keep; ++i) {
      const std::string s = "keep-" + std::to_string(i);
      ASSERT_TRUE(store.AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, r * 2, 2, 0, 200)).ok());
    }
    for (int i = 0; i < gone; ++i) {
      const std::string s = "gone-" + std::to_string(i);
      ASSERT_TRUE(store.AppendSync(s, ExpectedVersion::Any(), {SecretEvent(s, r * 2), SecretEvent(s, r * 2 + 1)}).ok());
    }
  }
}

// Whether any file under `dir` holds `needle`.
std::vector<std::string> FilesHolding(const std::filesystem::path& dir, std::string_view needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const auto bytes = testing::ReadFileBytes(entry.path());
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (text.find(needle) != std::string_view::npos) found.push_back(entry.path().filename().string());
  }
  return found;
}

// Disk blocks of every file under `dir` (what du counts).
uint64_t DiskUse(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st;
    if (entry.is_regular_file() && ::stat(entry.path().c_str(), &st) == 0) bytes += uint64_t(st.st_blocks) * 512;
  }
  return bytes;
}

struct Seen {
  GlobalPosition position;
  StreamVersion version;
  std::string stream, data, metadata;
  EventId id;
  bool operator==(const Seen&) const = default;
};

Seen SeenOf(const EventView& e) {
  return {e.position, e.version, std::string(e.stream), std::string(e.data), std::string(e.metadata), e.id};
}

// Every event $all serves; read as records too (Store::ReadAllRecords, whose runs must hold
// a rewritten batch's events just as they do a written one's), and both must agree.
std::vector<Seen> AllEvents(const Store& store) {
  std::vector<Seen> out;
  auto n = store.ReadAll(GlobalPosition(0), SIZE_MAX, [&](const EventView& e) {
    out.push_back(SeenOf(e));
    return true;
  });
  EXPECT_TRUE(n.ok()) << n.status().ToString();

  std::vector<Seen> as_records;
  const Status read = testing::ForEachEventAsRecords(store, [&](const EventView& e) { as_records.push_back(SeenOf(e)); });
  EXPECT_TRUE(read.ok()) << read.ToString();
  EXPECT_TRUE(as_records == out) << "records: " << as_records.size() << " events, views: " << out.size();
  return out;
}

void ExpectVerifyClean(const std::filesystem::path& dir) {
  auto report = VerifyStore(dir);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  for (const auto& p : report->problems) ADD_FAILURE() << p.file << ": " << p.what;
  for (const auto& n : report->notes) ADD_FAILURE() << "note: " << n;
}

TEST(Scavenge, WithNothingRemovedRewritesNothing) {
  Fixture f;
  Fill(*f.store, 60, 2, 1);
  const auto before = AllEvents(*f.store);
  const auto status = f.Scavenge();
  EXPECT_EQ(status.state, ScavengeStatus::State::kFinished);
  EXPECT_GT(status.segments_total, 0u);
  EXPECT_EQ(status.segments_done, status.segments_total);
  EXPECT_EQ(status.segments_rewritten, 0u);
  EXPECT_EQ(status.events_removed, 0u);
  EXPECT_EQ(f.listener.started.load(), 1);
  EXPECT_EQ(AllEvents(*f.store), before);
}

TEST(Scavenge, DeletedStreamsLeaveNoByteBehindAndKeptEventsReadBackIdentical) {
  Fixture f;
  Fill(*f.store, 40, 3, 2);
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-0", ExpectedVersion::Any(), false).ok());
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-1", ExpectedVersion::Any(), true).ok());
  // What must remain: every event of the kept streams, as the store serves it now.
  std::vector<Seen> kept;
  for (const Seen& e : AllEvents(*f.store)) {
    if (e.stream.starts_with("keep-") || e.stream.starts_with("$$")) kept.push_back(e);
  }
  ASSERT_FALSE(FilesHolding(f.dir.path(), kSecret).empty()) << "the test must start with the payload on disk";
  const uint64_t log_before = f.store->stats().log_bytes;

  const auto status = f.Scavenge();
  ASSERT_EQ(status.state, ScavengeStatus::State::kFinished) << status.error.ToString();
  EXPECT_GT(status.segments_rewritten, 0u);
  EXPECT_EQ(status.events_removed, 2u * 40 * 2);
  EXPECT_GT(status.bytes_read, 0u);
  EXPECT_LT(f.store->stats().log_bytes, log_before);
  EXPECT_EQ(FilesHolding(f.dir.path(), kSecret), std::vector<std::string>{});

  auto check = [&](const Store& store) {
    EXPECT_EQ(AllEvents(store), kept) << "$all: every kept event in order, holes where the removed ones were";
    for (int i = 0; i < 3; ++i) {
      const std::string s = "keep-" + std::to_string(i);
      auto fwd = store.ReadStream(s, StreamVersion(0), 1000);
      ASSERT_TRUE(fwd.ok()) << fwd.status().ToString();
      ASSERT_EQ(fwd->size(), 80u);
      for (uint64_t v = 0; v < 80; ++v) {
        EXPECT_EQ((*fwd)[v].version, StreamVersion(v));
        EXPECT_EQ((*fwd)[v].data, MakeEvent(s, v, 0, 200).data);
      }
      auto back = store.ReadStream(s, StreamVersion(79), 1000, Direction::kBackward);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      ASSERT_EQ(back->size(), 80u);
      EXPECT_EQ(back->back().version, StreamVersion(0));
      EXPECT_EQ(back->front().position, fwd->back().position);
    }
    EXPECT_EQ(store.ReadStream("gone-0", StreamVersion(0), 10).status().code(), Status::Code::kNotFound);
    EXPECT_EQ(store.ReadStream("gone-1", StreamVersion(0), 10).status().code(), Status::Code::kStreamDeleted);
  };
  check(*f.store);
  ExpectVerifyClean(f.dir.path());
  f.Reopen();
  check(*f.store);
  // Appends go on with the right versions.
  auto r = f.store->AppendSync("keep-0", ExpectedVersion::Exact(StreamVersion(79)), MakeEvents("keep-0", 80, 1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_version, StreamVersion(80));
  ExpectVerifyClean(f.dir.path());
}

// With a grace period for readers of the replaced segments (the daemon's default is 5 s),
// a scavenge says finished only once they are gone: the space is back and no replaced file
// (a ".retired" link kept for recycling) still holds a removed byte.
TEST(Scavenge, AFinishedScavengeHasLetGoOfTheFilesItReplaced) {
  Options o = SmallOptions();
  Fixture f(o);
  f.options.scavenge_retire_after = std::chrono::milliseconds(300);
  f.Reopen();
  Fill(*f.store, 40, 3, 2);
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-0", ExpectedVersion::Any(), true).ok());
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-1", ExpectedVersion::Any(), true).ok());
  const auto status = f.Scavenge();
  ASSERT_EQ(status.state, ScavengeStatus::State::kFinished) << status.error.ToString();
  ASSERT_GT(status.segments_rewritten, 0u);
  EXPECT_EQ(f.store->GetScavengeStatus().state, ScavengeStatus::State::kFinished);
  EXPECT_EQ(FilesHolding(f.dir.path(), kSecret), std::vector<std::string>{});
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path() / "segments")) {
    EXPECT_FALSE(entry.path().string().ends_with(".retired")) << entry.path();
  }
}

TEST(Scavenge, SoftDeletedStreamRecreatedAfterScavengeContinuesAtItsNextVersion) {
  Fixture f;
  // "old" lives only in the first segments; later segments hold only "filler".
  ASSERT_TRUE(f.store->AppendSync("old", ExpectedVersion::NoStream(), MakeEvents("old", 0, 5, 0, 2000)).ok());
  Fill(*f.store, 30, 1, 0);
  ASSERT_TRUE(f.store->DeleteStreamSync("old", ExpectedVersion::Exact(StreamVersion(4)), false).ok());
  ASSERT_EQ(f.Scavenge().state, ScavengeStatus::State::kFinished);
  // The index files must be rebuilt from the rewritten segments: only the tips record says
  // where "old" stood.
  f.store.reset();
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path() / "segments")) {
    if (entry.path().extension() == ".idx") std::filesystem::remove(entry.path());
  }
  f.Reopen();
  EXPECT_GT(f.store->recovery().index_files_rebuilt, 0u);
  auto r = f.store->AppendSync("old", ExpectedVersion::NoStream(), MakeEvents("old", 5, 1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_version, StreamVersion(5)) << "versions are never reused";
  ExpectVerifyClean(f.dir.path());
}

TEST(Scavenge, ASegmentRewrittenTwiceKeepsTheTipsOfItsFirstRewrite) {
  Fixture f;
  // "first" and "second" live only in the first segments, beside kept "filler".
  ASSERT_TRUE(f.store->AppendSync("first", ExpectedVersion::NoStream(), MakeEvents("first", 0, 3, 0, 1500)).ok());
  ASSERT_TRUE(f.store->AppendSync("second", ExpectedVersion::NoStream(), MakeEvents("second", 0, 3, 0, 1500)).ok());
  Fill(*f.store, 40, 1, 0);
  ASSERT_TRUE(f.store->DeleteStreamSync("first", ExpectedVersion::Any(), false).ok());
  ASSERT_GT(f.Scavenge().segments_rewritten, 0u);
  ASSERT_TRUE(f.store->DeleteStreamSync("second", ExpectedVersion::Any(), false).ok());
  ASSERT_GT(f.Scavenge().segments_rewritten, 0u) << "the segment already rewritten once is rewritten again";
  // Only the tips records now say where "first" and "second" stood.
  f.store.reset();
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path() / "segments")) {
    if (entry.path().extension() == ".idx") std::filesystem::remove(entry.path());
  }
  f.Reopen();
  for (const std::string s : {"first", "second"}) {
    auto r = f.store->AppendSync(s, ExpectedVersion::NoStream(), MakeEvents(s, 3, 1));
    ASSERT_TRUE(r.ok()) << s << ": " << r.status().ToString();
    EXPECT_EQ(r->first_version, StreamVersion(3)) << s;
  }
  ExpectVerifyClean(f.dir.path());
}

TEST(Scavenge, TruncatedEventsAreRemovedAndTheRestReadsFromTheFirstKept) {
  Fixture f;
  Fill(*f.store, 30, 1, 1);
  ASSERT_TRUE(f.store->TruncateStreamSync("gone-0", StreamVersion(50)).ok());
  ASSERT_EQ(f.Scavenge().state, ScavengeStatus::State::kFinished);
  for (bool reopened : {false, true}) {
    if (reopened) f.Reopen();
    auto events = f.store->ReadStream("gone-0", StreamVersion(0), 1000);
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    ASSERT_EQ(events->size(), 10u);
    EXPECT_EQ(events->front().version, StreamVersion(50));
    auto back = f.store->ReadStream("gone-0", StreamVersion(59), 1000, Direction::kBackward);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->size(), 10u);
    EXPECT_EQ(back->back().version, StreamVersion(50));
  }
  const auto secret_files = FilesHolding(f.dir.path(), std::string(kSecret) + "-gone-0-49s");
  EXPECT_TRUE(secret_files.empty());
  ExpectVerifyClean(f.dir.path());
}

TEST(Scavenge, ExpiredEventsAreScavengedAndTheStreamGoesOnAfterThem) {
  Fixture f;
  Fill(*f.store, 40, 1, 1);
  StreamMetadata meta;
  meta.max_age_micros = 1;  // everything committed before now is expired
  ASSERT_TRUE(f.store->SetStreamMetadataSync("gone-0", ExpectedVersion::Any(), meta).ok());
  const auto status = f.Scavenge();
  ASSERT_EQ(status.state, ScavengeStatus::State::kFinished) << status.error.ToString();
  EXPECT_EQ(status.events_removed, 80u);
  EXPECT_EQ(FilesHolding(f.dir.path(), kSecret), std::vector<std::string>{});
  f.Reopen();
  EXPECT_EQ(f.store->ReadStream("gone-0", StreamVersion(0), 10).status().code(), Status::Code::kNotFound);
  auto r = f.store->AppendSync("gone-0", ExpectedVersion::Any(), MakeEvents("gone-0", 80, 1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_version, StreamVersion(80));
  ExpectVerifyClean(f.dir.path());
}

TEST(Scavenge, RemovedEventsInTheActiveSegmentAreSealedAndRewrittenToo) {
  Fixture f;
  ASSERT_TRUE(f.store->AppendSync("gone-0", ExpectedVersion::NoStream(), {SecretEvent("gone-0", 0)}).ok());
  ASSERT_TRUE(f.store->AppendSync("keep-0", ExpectedVersion::NoStream(), MakeEvents("keep-0", 0, 1)).ok());
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-0", ExpectedVersion::Any(), true).ok());
  ASSERT_EQ(testing::SegmentFiles(f.dir.path()).size(), 1u);
  const auto status = f.Scavenge();
  ASSERT_EQ(status.state, ScavengeStatus::State::kFinished) << status.error.ToString();
  EXPECT_EQ(status.segments_rewritten, 1u);
  EXPECT_EQ(FilesHolding(f.dir.path(), kSecret), std::vector<std::string>{});
  auto keep = f.store->ReadStream("keep-0", StreamVersion(0), 10);
  ASSERT_TRUE(keep.ok());
  EXPECT_EQ(keep->size(), 1u);
  ASSERT_TRUE(f.store->AppendSync("keep-0", ExpectedVersion::Exact(StreamVersion(0)), MakeEvents("keep-0", 1, 1)).ok());
  ExpectVerifyClean(f.dir.path());
}

TEST(Scavenge, ReclaimsAtLeast45PercentOfTheLogWhenDeletedStreamsHoldHalf) {
  // ~20 segments: what stays besides the kept half (a recycled spare of one segment, the
  // zeros ahead of the writer, each file's last block) is small beside the log, as in a
  // store of 256 MiB segments.
  Options o = SmallOptions();
  o.segment_size = 256 * 1024;
  o.fill_ahead = 32 * 1024;
  o.durability = DurabilityMode{Durability::kNever, {}};  // the bytes matter here, not the syncs
  Fixture f(o);
  // Equal bytes kept and deleted: each round one batch of each, the same size.
  for (int r = 0; r < 1000; ++r) {
    ASSERT_TRUE(f.store->AppendSync("keep", ExpectedVersion::Any(), MakeEvents("keep", r * 4, 4, 0, 1200)).ok());
    ASSERT_TRUE(f.store->AppendSync("gone-" + std::to_string(r % 10), ExpectedVersion::Any(),
                                    MakeEvents("gone-" + std::to_string(r % 10), (r / 10) * 4, 4, 1, 1200))
                    .ok());
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(f.store->DeleteStreamSync("gone-" + std::to_string(i), ExpectedVersion::Any(), false).ok());
  }
  ASSERT_TRUE(f.store->Sync().ok());
  const uint64_t log = f.store->stats().log_bytes;
  ASSERT_GT(testing::SegmentFiles(f.dir.path()).size(), 15u);
  const uint64_t before = DiskUse(f.dir.path());
  ASSERT_EQ(f.Scavenge().state, ScavengeStatus::State::kFinished);
  const uint64_t after = DiskUse(f.dir.path());
  EXPECT_GE(before - std::min(before, after), log * 45 / 100)
      << "log " << log << " bytes, disk " << before << " -> " << after;
}

TEST(Scavenge, ASecondScavengeFindsNothingMoreToRemove) {
  Fixture f;
  Fill(*f.store, 30, 1, 1);
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-0", ExpectedVersion::Any(), false).ok());
  ASSERT_GT(f.Scavenge().segments_rewritten, 0u);
  const auto again = f.Scavenge();
  EXPECT_EQ(again.state, ScavengeStatus::State::kFinished);
  EXPECT_EQ(again.segments_rewritten, 0u);
  EXPECT_EQ(again.events_removed, 0u);
}

TEST(Scavenge, StartWhileRunningIsRefusedAndStopEndsIt) {
  Options o = SmallOptions();
  o.scavenge_read_bytes_per_second = 1;  // so slow that it is still running when asked
  Fixture f(o);
  Fill(*f.store, 30, 1, 1);
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-0", ExpectedVersion::Any(), false).ok());
  ASSERT_TRUE(f.store->StartScavenge().ok());
  Status again = f.store->StartScavenge();
  EXPECT_EQ(again.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(again.message().find("esctl scavenge status"), std::string::npos);
  f.store->StopScavenge();
  const auto status = f.listener.WaitFor(1);
  EXPECT_EQ(status.state, ScavengeStatus::State::kStopped);
  EXPECT_LT(status.segments_done, status.segments_total);
  ExpectVerifyClean(f.dir.path());
}

TEST(Scavenge, BackupOfAScavengedStoreOpensAndVerifies) {
  Fixture f;
  Fill(*f.store, 30, 2, 1);
  ASSERT_TRUE(f.store->DeleteStreamSync("gone-0", ExpectedVersion::Any(), false).ok());
  ASSERT_EQ(f.Scavenge().state, ScavengeStatus::State::kFinished);
  TempDir backup;
  auto copied = f.store->Backup(backup.path() / "b");
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  ExpectVerifyClean(backup.path() / "b");
  auto restored = Store::Open(backup.path() / "b", SmallOptions());
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(AllEvents(**restored), AllEvents(*f.store));
}

}  // namespace
}  // namespace esd::storage
