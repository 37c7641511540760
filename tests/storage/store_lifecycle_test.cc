// Behaviour of stream metadata, delete, truncate and expiry through the public Store API:
// what each removes from every read path, the typed refusals, and that it all survives a
// reopen (storage/lifecycle.h).
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <string>
#include <vector>

#include "storage/file.h"
#include "storage/lifecycle.h"
#include "storage/store.h"
#include "open_store.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvents;
using testing::OpenStore;
using testing::SmallOptions;
using testing::TempDir;

void Append(Store& store, const std::string& stream, uint64_t first, size_t count, size_t data_size = 40) {
  auto r = store.AppendSync(stream, ExpectedVersion::Any(), MakeEvents(stream, first, count, 0, data_size));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->first_version, StreamVersion(first));
}

std::vector<uint64_t> Versions(const Store& store, const std::string& stream, uint64_t from = 0,
                               Direction direction = Direction::kForward, size_t count = 1000) {
  auto events = store.ReadStream(stream, StreamVersion(from), count, direction);
  EXPECT_TRUE(events.ok()) << events.status().ToString();
  std::vector<uint64_t> out;
  if (events.ok()) {
    for (const EventView& e : *events) out.push_back(e.version.value);
  }
  return out;
}

// (stream, version) of every event $all serves as records (Store::ReadAllRecords), parsed
// back run by run.
std::vector<std::pair<std::string, uint64_t>> AllAsRecords(const Store& store) {
  std::vector<std::pair<std::string, uint64_t>> out;
  const Status read = testing::ForEachEventAsRecords(
      store, [&](const EventView& e) { out.emplace_back(std::string(e.stream), e.version.value); });
  EXPECT_TRUE(read.ok()) << read.ToString();
  return out;
}

// (stream, version) of every event $all serves, read with and without a copy buffer, and as
// records; all must agree.
std::vector<std::pair<std::string, uint64_t>> All(const Store& store) {
  std::vector<std::pair<std::string, uint64_t>> mapped, copied;
  auto n = store.ReadAll(GlobalPosition(0), 1'000'000, [&](const EventView& e) {
    mapped.emplace_back(std::string(e.stream), e.version.value);
    return true;
  });
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  ReadBuffer buffer;
  GlobalPosition from(0);
  while (true) {
    GlobalPosition last = from;
    bool any = false;
    auto m = store.ReadAll(
        from, 1'000'000,
        [&](const EventView& e) {
          copied.emplace_back(std::string(e.stream), e.version.value);
          last = e.position;
          any = true;
          return true;
        },
        buffer);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok() || !any) break;
    from = last + 1;
  }
  EXPECT_EQ(mapped, copied);
  EXPECT_EQ(mapped, AllAsRecords(store));
  return mapped;
}

std::vector<uint64_t> VersionsInAll(const Store& store, const std::string& stream) {
  std::vector<uint64_t> out;
  for (const auto& [s, v] : All(store)) {
    if (s == stream) out.push_back(v);
  }
  return out;
}

TEST(StoreLifecycle, SoftDeletedStreamReadsAsNotFoundAndAnAppendRecreatesItAfterItsLastVersion) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "cart-1", 0, 3);
  Append(*store, "cart-2", 0, 2);
  auto d = store->DeleteStreamSync("cart-1", ExpectedVersion::Exact(StreamVersion(2)), false);
  ASSERT_TRUE(d.ok()) << d.status().ToString();

  auto read = store->ReadStream("cart-1", StreamVersion(0), 10);
  EXPECT_EQ(read.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store->ReadStream("cart-1", StreamVersion(2), 10, Direction::kBackward).status().code(),
            Status::Code::kNotFound);
  EXPECT_TRUE(VersionsInAll(*store, "cart-1").empty());
  EXPECT_EQ(VersionsInAll(*store, "cart-2"), (std::vector<uint64_t>{0, 1}));
  auto info = store->GetStreamInfo("cart-1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->first_kept, StreamVersion(3));
  EXPECT_FALSE(info->hard_deleted);

  // It reads as not found, so "no stream" recreates it; its versions go on.
  auto again = store->AppendSync("cart-1", ExpectedVersion::NoStream(), MakeEvents("cart-1", 3, 2));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->first_version, StreamVersion(3));
  EXPECT_EQ(Versions(*store, "cart-1"), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(Versions(*store, "cart-1", 10, Direction::kBackward), (std::vector<uint64_t>{4, 3}));
  EXPECT_EQ(VersionsInAll(*store, "cart-1"), (std::vector<uint64_t>{3, 4}));
}

TEST(StoreLifecycle, RetriedRecreatingAppendIsIdempotent) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "cart-1", 0, 2);
  ASSERT_TRUE(store->DeleteStreamSync("cart-1", ExpectedVersion::Any(), false).ok());
  const auto events = MakeEvents("cart-1", 2, 1);
  auto first = store->AppendSync("cart-1", ExpectedVersion::NoStream(), events);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto retry = store->AppendSync("cart-1", ExpectedVersion::NoStream(), events);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_TRUE(retry->already_written);
  EXPECT_EQ(retry->first_position, first->first_position);
}

TEST(StoreLifecycle, SoftDeletedStreamRefusesStreamExistsUntilRecreated) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "cart-1", 0, 1);
  ASSERT_TRUE(store->DeleteStreamSync("cart-1", ExpectedVersion::StreamExists(), false).ok());
  auto r = store->AppendSync("cart-1", ExpectedVersion::StreamExists(), MakeEvents("cart-1", 1, 1));
  EXPECT_EQ(r.status().code(), Status::Code::kWrongExpectedVersion);
}

TEST(StoreLifecycle, HardDeletedStreamRefusesAppendsReadsMetadataAndAnotherDelete) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "user-7", 0, 4);
  Append(*store, "user-8", 0, 1);
  auto d = store->DeleteStreamSync("user-7", ExpectedVersion::Any(), true);
  ASSERT_TRUE(d.ok()) << d.status().ToString();

  const GlobalPosition end = store->DurablePosition();
  auto append = store->AppendSync("user-7", ExpectedVersion::Any(), MakeEvents("user-7", 4, 1));
  EXPECT_EQ(append.status().code(), Status::Code::kStreamDeleted);
  EXPECT_NE(append.status().message().find("user-7"), std::string::npos);
  EXPECT_EQ(store->AppendSync("user-7", ExpectedVersion::NoStream(), MakeEvents("user-7", 0, 1)).status().code(),
            Status::Code::kStreamDeleted);
  EXPECT_EQ(store->ReadStream("user-7", StreamVersion(0), 10).status().code(), Status::Code::kStreamDeleted);
  EXPECT_EQ(store->DeleteStreamSync("user-7", ExpectedVersion::Any(), true).status().code(),
            Status::Code::kStreamDeleted);
  EXPECT_EQ(store->DeleteStreamSync("user-7", ExpectedVersion::Any(), false).status().code(),
            Status::Code::kStreamDeleted);
  EXPECT_EQ(store->TruncateStreamSync("user-7", StreamVersion(1)).status().code(), Status::Code::kStreamDeleted);
  EXPECT_EQ(store->SetStreamMetadataSync("user-7", ExpectedVersion::Any(), StreamMetadata{}).status().code(),
            Status::Code::kStreamDeleted);
  EXPECT_EQ(store->DurablePosition(), end) << "a refusal writes nothing";
  EXPECT_TRUE(VersionsInAll(*store, "user-7").empty());
  EXPECT_EQ(Versions(*store, "user-8"), (std::vector<uint64_t>{0}));
  EXPECT_TRUE(store->GetStreamInfo("user-7")->hard_deleted);
}

TEST(StoreLifecycle, DeleteChecksTheStreamsExpectedVersionAndChangesNothingWhenWrong) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "cart-1", 0, 3);
  const GlobalPosition end = store->DurablePosition();
  auto d = store->DeleteStreamSync("cart-1", ExpectedVersion::Exact(StreamVersion(1)), false);
  ASSERT_EQ(d.status().code(), Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(d.status().actual_version(), StreamVersion(2));
  EXPECT_EQ(store->DeleteStreamSync("cart-1", ExpectedVersion::NoStream(), true).status().code(),
            Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(store->DurablePosition(), end);
  EXPECT_EQ(Versions(*store, "cart-1"), (std::vector<uint64_t>{0, 1, 2}));
}

TEST(StoreLifecycle, DeletingOrTruncatingAStreamWithoutEventsIsNotFound) {
  TempDir dir;
  auto store = OpenStore(dir);
  EXPECT_EQ(store->DeleteStreamSync("ghost", ExpectedVersion::Any(), false).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store->DeleteStreamSync("ghost", ExpectedVersion::Any(), true).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store->TruncateStreamSync("ghost", StreamVersion(0)).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(0));
}

TEST(StoreLifecycle, ReservedAndBadNamesAreRefused) {
  TempDir dir;
  auto store = OpenStore(dir);
  EXPECT_EQ(store->DeleteStreamSync("$$x", ExpectedVersion::Any(), false).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->TruncateStreamSync("", StreamVersion(0)).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store->SetStreamMetadataSync("$all", ExpectedVersion::Any(), {}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->GetStreamMetadata("$x").status().code(), Status::Code::kInvalidArgument);
}

TEST(StoreLifecycle, TruncateRemovesTheVersionsBelowFromEveryRead) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "log-1", 0, 3);  // one batch of 0..2: the truncation splits it
  Append(*store, "log-2", 0, 2);
  Append(*store, "log-1", 3, 3);
  auto t = store->TruncateStreamSync("log-1", StreamVersion(2));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(Versions(*store, "log-1"), (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(Versions(*store, "log-1", 1), (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(Versions(*store, "log-1", 4), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(Versions(*store, "log-1", 5, Direction::kBackward), (std::vector<uint64_t>{5, 4, 3, 2}));
  EXPECT_TRUE(Versions(*store, "log-1", 1, Direction::kBackward).empty());
  EXPECT_EQ(VersionsInAll(*store, "log-1"), (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(store->GetStreamInfo("log-1")->first_kept, StreamVersion(2));

  // Truncating to the end removes everything: the stream reads as not found.
  ASSERT_TRUE(store->TruncateStreamSync("log-1", StreamVersion(6)).ok());
  EXPECT_EQ(store->ReadStream("log-1", StreamVersion(0), 10).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(VersionsInAll(*store, "log-2"), (std::vector<uint64_t>{0, 1}));
}

TEST(StoreLifecycle, TruncatePastTheEndIsRefusedAndChangesNothing) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "log-1", 0, 3);
  const GlobalPosition end = store->DurablePosition();
  auto t = store->TruncateStreamSync("log-1", StreamVersion(4));
  ASSERT_EQ(t.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(t.status().message().find("last version is 2"), std::string::npos) << t.status().message();
  EXPECT_EQ(store->DurablePosition(), end);
  EXPECT_FALSE(store->GetStreamMetadata("log-1")->metadata_version.has_value());
}

TEST(StoreLifecycle, CustomMetadataOverTheEventSizeLimitIsRefusedNamingTheFlagAndChangesNothing) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "log-1", 0, 1);
  const GlobalPosition end = store->DurablePosition();
  StreamMetadata m;
  m.custom = std::string(Options().max_event_size + 1, 'x');
  const auto set = store->SetStreamMetadataSync("log-1", ExpectedVersion::Any(), m);
  ASSERT_EQ(set.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(set.status().message().find("bytes is over the event size limit of "), std::string::npos)
      << set.status().message();
  EXPECT_NE(set.status().message().find("(esd --max-event-size)"), std::string::npos) << set.status().message();
  EXPECT_EQ(store->DurablePosition(), end);
  EXPECT_FALSE(store->GetStreamMetadata("log-1")->metadata_version.has_value());
}

TEST(StoreLifecycle, TruncateBeforeNeverMovesBack) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "log-1", 0, 5);
  ASSERT_TRUE(store->TruncateStreamSync("log-1", StreamVersion(3)).ok());
  ASSERT_TRUE(store->TruncateStreamSync("log-1", StreamVersion(1)).ok());
  EXPECT_EQ(Versions(*store, "log-1"), (std::vector<uint64_t>{3, 4}));
  StreamMetadata none;
  ASSERT_TRUE(store->SetStreamMetadataSync("log-1", ExpectedVersion::Any(), none).ok());
  EXPECT_EQ(Versions(*store, "log-1"), (std::vector<uint64_t>{3, 4}));
}

TEST(StoreLifecycle, MaxCountKeepsTheNewestEventsAsTheStreamGrows) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "ticks", 0, 5);
  StreamMetadata m;
  m.max_count = 2;
  ASSERT_TRUE(store->SetStreamMetadataSync("ticks", ExpectedVersion::NoStream(), m).ok());
  EXPECT_EQ(Versions(*store, "ticks"), (std::vector<uint64_t>{3, 4}));
  Append(*store, "ticks", 5, 1);
  EXPECT_EQ(Versions(*store, "ticks"), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(VersionsInAll(*store, "ticks"), (std::vector<uint64_t>{4, 5}));

  // Raising the limit brings nothing back: what was removed stays removed.
  m.max_count = 100;
  ASSERT_TRUE(store->SetStreamMetadataSync("ticks", ExpectedVersion::Exact(StreamVersion(0)), m).ok());
  EXPECT_EQ(Versions(*store, "ticks"), (std::vector<uint64_t>{4, 5}));
}

TEST(StoreLifecycle, MaxAgeRemovesEventsOlderThanItAndKeepsNewerOnes) {
  TempDir dir;
  auto store = OpenStore(dir);
  constexpr uint64_t kAge = 2'000'000;  // 2 s: the new event must stay younger than this until read
  auto old = store->AppendSync("sensor", ExpectedVersion::Any(), MakeEvents("sensor", 0, 3));
  ASSERT_TRUE(old.ok());
  while (NowMicros() <= old->timestamp + kAge) {
    // waiting for the wall clock to pass the age, not for another thread
  }
  Append(*store, "sensor", 3, 1);
  StreamMetadata m;
  m.max_age_micros = kAge;
  ASSERT_TRUE(store->SetStreamMetadataSync("sensor", ExpectedVersion::Any(), m).ok());
  EXPECT_EQ(Versions(*store, "sensor"), (std::vector<uint64_t>{3}));
  EXPECT_EQ(Versions(*store, "sensor", 3, Direction::kBackward), (std::vector<uint64_t>{3}));
  EXPECT_EQ(VersionsInAll(*store, "sensor"), (std::vector<uint64_t>{3}));

  // Dropping the age keeps what it had removed.
  ASSERT_TRUE(store->SetStreamMetadataSync("sensor", ExpectedVersion::Any(), StreamMetadata{}).ok());
  EXPECT_EQ(Versions(*store, "sensor"), (std::vector<uint64_t>{3}));
}

TEST(StoreLifecycle, AStreamWhoseEventsAllExpiredReadsAsNotFound) {
  TempDir dir;
  auto store = OpenStore(dir);
  auto r = store->AppendSync("sensor", ExpectedVersion::Any(), MakeEvents("sensor", 0, 2));
  ASSERT_TRUE(r.ok());
  StreamMetadata m;
  m.max_age_micros = 1;
  ASSERT_TRUE(store->SetStreamMetadataSync("sensor", ExpectedVersion::Any(), m).ok());
  while (NowMicros() <= r->timestamp + 1) {
  }
  EXPECT_EQ(store->ReadStream("sensor", StreamVersion(0), 10).status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(VersionsInAll(*store, "sensor").empty());
}

TEST(StoreLifecycle, MetadataIsWrittenWithItsOwnExpectedVersionAndReadBack) {
  TempDir dir;
  auto store = OpenStore(dir);
  auto none = store->GetStreamMetadata("orders");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->metadata_version.has_value());
  EXPECT_EQ(none->metadata, StreamMetadata{});

  StreamMetadata m;
  m.max_count = 10;
  m.max_age_micros = 3'600'000'000;
  m.custom = R"({"owner":"billing"})";
  auto w = store->SetStreamMetadataSync("orders", ExpectedVersion::NoStream(), m);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->first_version, StreamVersion(0));
  auto back = store->GetStreamMetadata("orders");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->metadata, m);
  EXPECT_EQ(back->metadata_version, StreamVersion(0));

  auto stale = store->SetStreamMetadataSync("orders", ExpectedVersion::NoStream(), StreamMetadata{});
  EXPECT_EQ(stale.status().code(), Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(store->GetStreamMetadata("orders")->metadata, m);
  StreamMetadata zero;
  zero.max_count = 0;
  EXPECT_EQ(store->SetStreamMetadataSync("orders", ExpectedVersion::Any(), zero).status().code(),
            Status::Code::kInvalidArgument);
  StreamMetadata hard;
  hard.hard_deleted = true;
  EXPECT_EQ(store->SetStreamMetadataSync("orders", ExpectedVersion::Any(), hard).status().code(),
            Status::Code::kInvalidArgument);
  StreamMetadata past;
  past.truncate_before = StreamVersion(1);  // "orders" has no event
  EXPECT_EQ(store->SetStreamMetadataSync("orders", ExpectedVersion::Any(), past).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->GetStreamMetadata("orders")->metadata_version, StreamVersion(0));
}

TEST(StoreLifecycle, TheDeleteIsInAllAsAStreamDeletedEventAndOnlyTheLastMetadataEventRemains) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "cart-1", 0, 2);
  StreamMetadata m;
  m.custom = "first";
  ASSERT_TRUE(store->SetStreamMetadataSync("cart-1", ExpectedVersion::Any(), m).ok());
  ASSERT_TRUE(store->DeleteStreamSync("cart-1", ExpectedVersion::Any(), false).ok());
  std::vector<std::string> types;
  auto n = store->ReadAll(GlobalPosition(0), 100, [&](const EventView& e) {
    if (e.stream == "$$cart-1") types.emplace_back(e.type);
    return true;
  });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(types, (std::vector<std::string>{std::string(kStreamDeletedEventType)}));
  auto meta = store->ReadStream("$$cart-1", StreamVersion(0), 10);
  ASSERT_TRUE(meta.ok());
  ASSERT_EQ(meta->size(), 1u);
  auto decoded = DecodeStreamMetadata(meta->front().data);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->truncate_before, StreamVersion(2));
  EXPECT_EQ(decoded->custom, "first") << "a delete keeps the rest of the metadata";
}

TEST(StoreLifecycle, EverythingRemovedStaysRemovedAfterAReopen) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    Append(*store, "soft", 0, 2);
    Append(*store, "hard", 0, 2);
    Append(*store, "cut", 0, 4);
    Append(*store, "kept", 0, 1);
    // Enough other events that some of the metadata streams end up in sealed segments.
    for (int i = 0; i < 60; ++i) Append(*store, "filler-" + std::to_string(i), 0, 1, 2000);
    ASSERT_TRUE(store->DeleteStreamSync("soft", ExpectedVersion::Any(), false).ok());
    for (int i = 0; i < 60; ++i) Append(*store, "filler-" + std::to_string(i), 1, 1, 2000);
    ASSERT_TRUE(store->DeleteStreamSync("hard", ExpectedVersion::Any(), true).ok());
    ASSERT_TRUE(store->TruncateStreamSync("cut", StreamVersion(3)).ok());
    ASSERT_GT(testing::SegmentFiles(dir.path()).size(), 2u);
  }
  auto store = OpenStore(dir);
  EXPECT_EQ(store->ReadStream("soft", StreamVersion(0), 10).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store->ReadStream("hard", StreamVersion(0), 10).status().code(), Status::Code::kStreamDeleted);
  EXPECT_EQ(store->AppendSync("hard", ExpectedVersion::Any(), MakeEvents("hard", 2, 1)).status().code(),
            Status::Code::kStreamDeleted);
  EXPECT_EQ(Versions(*store, "cut"), (std::vector<uint64_t>{3}));
  EXPECT_EQ(Versions(*store, "kept"), (std::vector<uint64_t>{0}));
  EXPECT_TRUE(VersionsInAll(*store, "soft").empty());
  EXPECT_TRUE(VersionsInAll(*store, "hard").empty());
  auto again = store->AppendSync("soft", ExpectedVersion::NoStream(), MakeEvents("soft", 2, 1));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->first_version, StreamVersion(2));
}

TEST(StoreLifecycle, SystemAppendsTakeDollarNamesButNotMetadataStreams) {
  TempDir dir;
  auto store = OpenStore(dir);
  auto wait = [&](std::string stream) {
    std::promise<AppendResult> p;
    auto f = p.get_future();
    store->AppendSystem(stream, ExpectedVersion::Any(), MakeEvents(stream, 0, 1),
                        [&p](AppendResult r) { p.set_value(std::move(r)); });
    return f.get();
  };
  auto ok = wait("$erasures");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(Versions(*store, "$erasures"), (std::vector<uint64_t>{0}));
  EXPECT_EQ(wait("$$erasures").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(wait("erasures").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store->AppendSync("$erasures", ExpectedVersion::Any(), MakeEvents("$erasures", 1, 1)).status().code(),
            Status::Code::kInvalidArgument)
      << "a user's append still may not write a system stream";
}

}  // namespace
}  // namespace esd::storage

namespace esd::storage {
namespace {

TEST(StoreLifecycle, AScanThatPassesRemovedEventsSaysHowFarItSkipped) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "kept", 0, 1);       // position 0
  Append(*store, "gone", 0, 3);       // 1..3
  ASSERT_TRUE(store->DeleteStreamSync("gone", ExpectedVersion::Any(), false).ok());  // 4: $$gone
  Append(*store, "gone", 3, 2);       // 5, 6: recreated, kept
  ASSERT_TRUE(store->TruncateStreamSync("gone", StreamVersion(5)).ok());  // 7: removes 5 (v3), 6 (v4)... v5 is end

  GlobalPosition skipped(0);
  std::vector<uint64_t> positions;
  auto n = store->ReadAll(GlobalPosition(1), 100, [&](const EventView& e) {
    positions.push_back(e.position.value);
    return true;
  }, &skipped);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(positions, (std::vector<uint64_t>{7}));  // only the last $$gone event remains
  EXPECT_EQ(skipped, GlobalPosition(7)) << "one past the last removed event passed";

  GlobalPosition none(42);
  ASSERT_TRUE(store->ReadAll(GlobalPosition(7), 100, [](const EventView&) { return true; }, &none).ok());
  EXPECT_EQ(none, GlobalPosition(42)) << "left alone when nothing removed was passed";
}

TEST(StoreLifecycle, ARecordsScanGivesAPartlyRemovedBatchEventByEventAndWholeBatchesWhole) {
  TempDir dir;
  auto store = OpenStore(dir);
  Append(*store, "log-1", 0, 3);  // positions 0..2, one batch
  Append(*store, "log-2", 0, 4);  // 3..6
  ASSERT_TRUE(store->TruncateStreamSync("log-1", StreamVersion(2)).ok());  // 7: $$log-1

  struct Run {
    uint64_t first;
    uint32_t count;
    std::string stream;
    bool operator==(const Run&) const = default;
  };
  std::vector<Run> runs;
  ReadBuffer buffer;
  GlobalPosition skipped(0);
  auto n = store->ReadAllRecords(GlobalPosition(0), 100, [&](const Store::RecordRun& run) {
    runs.push_back({run.first.value, run.count, std::string(run.stream)});
    return run.count;
  }, buffer, &skipped);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1u + 4u + 1u);
  EXPECT_EQ(runs, (std::vector<Run>{{2, 1, "log-1"}, {3, 4, "log-2"}, {7, 1, "$$log-1"}}));
  EXPECT_EQ(skipped, GlobalPosition(2)) << "one past the removed events it passed";
}

}  // namespace
}  // namespace esd::storage
