// Behaviour of the public Store API: appends, expected versions, idempotent retries, reads,
// limits, the directory lock and reopening.
#include "storage/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "storage/format.h"
#include "storage/verify.h"
#include "open_store.h"
#include "test_util.h"

namespace esd::storage {
namespace {

using testing::MakeEvent;
using testing::OpenStore;
using testing::MakeEvents;
using testing::SmallOptions;
using testing::TempDir;

TEST(Store, AppendThenReadStreamReturnsEventsWithPositionsAndVersions) {
  TempDir dir;
  auto store = OpenStore(dir);
  auto r = store->AppendSync("order-1", ExpectedVersion::NoStream(), MakeEvents("order-1", 0, 3));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_version, StreamVersion(0));
  EXPECT_EQ(r->last_version, StreamVersion(2));
  EXPECT_EQ(r->first_position, GlobalPosition(0));
  EXPECT_EQ(r->last_position, GlobalPosition(2));
  EXPECT_FALSE(r->already_written);

  auto events = store->ReadStream("order-1", StreamVersion(0), 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    const EventView& e = (*events)[i];
    const EventData expected = MakeEvent("order-1", i);
    EXPECT_EQ(e.stream, "order-1");
    EXPECT_EQ(e.version, StreamVersion(i));
    EXPECT_EQ(e.position, GlobalPosition(i));
    EXPECT_EQ(e.id, expected.id);
    EXPECT_EQ(e.type, expected.type);
    EXPECT_EQ(e.content_type, expected.content_type);
    EXPECT_EQ(e.metadata, expected.metadata);
    EXPECT_EQ(e.data, expected.data);
    EXPECT_EQ(e.timestamp, r->timestamp);
  }
}

// What the daemon hands the store for an RPC append: every field in one buffer.
PackedEvents Pack(const std::vector<EventData>& events) {
  size_t bytes = 0;
  for (const EventData& e : events) bytes += e.type.size() + e.content_type.size() + e.metadata.size() + e.data.size();
  PackedEvents packed{std::make_unique<char[]>(bytes), {}};
  char* at = packed.bytes.get();
  auto take = [&at](const std::string& s) {
    std::memcpy(at, s.data(), s.size());
    at += s.size();
    return std::string_view(at - s.size(), s.size());
  };
  for (const EventData& e : events) {
    packed.events.push_back({e.id, take(e.type), take(e.content_type), take(e.metadata), take(e.data)});
  }
  return packed;
}

TEST(Store, APackedAppendIsStoredAsTheSameEventsAndIsCheckedTheSameWay) {
  TempDir dir;
  auto store = OpenStore(dir);
  std::promise<AppendResult> done;
  store->Append("packed", ExpectedVersion::NoStream(), Pack(MakeEvents("packed", 0, 3)),
                [&done](AppendResult r) { done.set_value(std::move(r)); });
  auto r = done.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->last_version, StreamVersion(2));
  auto events = store->ReadStream("packed", StreamVersion(0), 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    const EventData expected = MakeEvent("packed", i);
    EXPECT_EQ((*events)[i].id, expected.id);
    EXPECT_EQ((*events)[i].type, expected.type);
    EXPECT_EQ((*events)[i].content_type, expected.content_type);
    EXPECT_EQ((*events)[i].metadata, expected.metadata);
    EXPECT_EQ((*events)[i].data, expected.data);
  }
  // A retry of the same packed events is recognised as one (the writer compares the views).
  std::promise<AppendResult> again;
  store->Append("packed", ExpectedVersion::NoStream(), Pack(MakeEvents("packed", 0, 3)),
                [&again](AppendResult r) { again.set_value(std::move(r)); });
  auto retried = again.get_future().get();
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_TRUE(retried->already_written);
  // And it is validated as the owned form is: a nil id is refused before anything is written.
  auto bad = MakeEvents("packed", 3, 2);
  bad[1].id = EventId{};
  std::promise<AppendResult> refused;
  store->Append("packed", ExpectedVersion::Any(), Pack(bad), [&refused](AppendResult r) { refused.set_value(std::move(r)); });
  auto no = refused.get_future().get();
  ASSERT_FALSE(no.ok());
  EXPECT_EQ(no.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(no.status().message().find("event 1: event id must not be nil"), std::string::npos) << no.status().message();
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(3));
}

TEST(Store, PositionsAreDenseAcrossStreams) {
  TempDir dir;
  auto store = OpenStore(dir);
  for (int i = 0; i < 20; ++i) {
    const std::string s = "s-" + std::to_string(i % 3);
    auto info = store->GetStreamInfo(s);
    const uint64_t next = info ? info->last_version.value + 1 : 0;
    ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, next, 1 + i % 4)).ok());
  }
  auto all = store->ReadAll(GlobalPosition(0), 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), store->DurablePosition().value);
  for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].position, GlobalPosition(i));
}

TEST(Store, WrongExpectedVersionReportsTheActualVersion) {
  TempDir dir;
  auto store = OpenStore(dir);
  ASSERT_TRUE(store->AppendSync("a", ExpectedVersion::NoStream(), MakeEvents("a", 0, 2)).ok());

  auto exact = store->AppendSync("a", ExpectedVersion::Exact(StreamVersion(0)), MakeEvents("a", 2, 1, 9));
  ASSERT_EQ(exact.status().code(), Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(exact.status().actual_version(), StreamVersion(1));

  auto no_stream = store->AppendSync("a", ExpectedVersion::NoStream(), MakeEvents("a", 0, 1, 9));
  ASSERT_EQ(no_stream.status().code(), Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(no_stream.status().actual_version(), StreamVersion(1));

  auto exists = store->AppendSync("b", ExpectedVersion::StreamExists(), MakeEvents("b", 0, 1));
  ASSERT_EQ(exists.status().code(), Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(exists.status().actual_version(), std::nullopt);

  auto ahead = store->AppendSync("b", ExpectedVersion::Exact(StreamVersion(5)), MakeEvents("b", 0, 1));
  ASSERT_EQ(ahead.status().code(), Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(ahead.status().actual_version(), std::nullopt);

  for (const char* stream : {"a", "b"}) {  // the largest version is no alias of "no stream"
    auto huge = store->AppendSync(stream, ExpectedVersion::Exact(StreamVersion(~uint64_t{0})), MakeEvents(stream, 9, 1, 9));
    EXPECT_EQ(huge.status().code(), Status::Code::kWrongExpectedVersion) << stream;
  }

  EXPECT_EQ(store->DurablePosition(), GlobalPosition(2)) << "a rejected append writes nothing";
}

TEST(Store, EveryExpectedVersionKindAcceptsWhenItHolds) {
  TempDir dir;
  auto store = OpenStore(dir);
  EXPECT_TRUE(store->AppendSync("x", ExpectedVersion::NoStream(), MakeEvents("x", 0, 1)).ok());
  EXPECT_TRUE(store->AppendSync("x", ExpectedVersion::StreamExists(), MakeEvents("x", 1, 1)).ok());
  EXPECT_TRUE(store->AppendSync("x", ExpectedVersion::Exact(StreamVersion(1)), MakeEvents("x", 2, 1)).ok());
  EXPECT_TRUE(store->AppendSync("x", ExpectedVersion::Any(), MakeEvents("x", 3, 1)).ok());
  auto info = store->GetStreamInfo("x");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->last_version, StreamVersion(3));
  EXPECT_EQ(info->event_count, 4u);
  EXPECT_EQ(info->last_position, GlobalPosition(3));
}

TEST(Store, RetriedAppendIsIdempotent) {
  TempDir dir;
  auto store = OpenStore(dir);
  auto first = store->AppendSync("r", ExpectedVersion::NoStream(), MakeEvents("r", 0, 3));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store->AppendSync("other", ExpectedVersion::Any(), MakeEvents("other", 0, 2)).ok());

  auto again = store->AppendSync("r", ExpectedVersion::NoStream(), MakeEvents("r", 0, 3));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->already_written);
  EXPECT_EQ(again->first_position, first->first_position);
  EXPECT_EQ(again->last_position, first->last_position);
  EXPECT_EQ(again->first_version, first->first_version);
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(5)) << "the retry wrote nothing";

  auto any = store->AppendSync("r", ExpectedVersion::Any(), MakeEvents("r", 0, 3));
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->already_written);
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(5));
}

TEST(Store, RetryWithDifferentContentUnderTheSameIdIsRejected) {
  TempDir dir;
  auto store = OpenStore(dir);
  ASSERT_TRUE(store->AppendSync("r", ExpectedVersion::NoStream(), MakeEvents("r", 0, 2)).ok());
  auto changed = MakeEvents("r", 0, 2);
  changed[1].data = "something else";
  auto r = store->AppendSync("r", ExpectedVersion::NoStream(), changed);
  EXPECT_EQ(r.status().code(), Status::Code::kIdempotencyConflict) << r.status().ToString();
  auto other_stream = store->AppendSync("q", ExpectedVersion::Any(), MakeEvents("r", 0, 2));
  EXPECT_EQ(other_stream.status().code(), Status::Code::kIdempotencyConflict);
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(2));
}

TEST(Store, RetryOfExactAppendIsRecognisedAfterReopen) {
  TempDir dir;
  AppendResult first = Status::NotFound("");
  {
    auto store = OpenStore(dir);
    ASSERT_TRUE(store->AppendSync("e", ExpectedVersion::NoStream(), MakeEvents("e", 0, 1)).ok());
    first = store->AppendSync("e", ExpectedVersion::Exact(StreamVersion(0)), MakeEvents("e", 1, 2));
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(store->AppendSync("e", ExpectedVersion::Exact(StreamVersion(2)), MakeEvents("e", 3, 1)).ok());
  }
  auto store = OpenStore(dir);
  auto retry = store->AppendSync("e", ExpectedVersion::Exact(StreamVersion(0)), MakeEvents("e", 1, 2));
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_TRUE(retry->already_written);
  EXPECT_EQ(retry->first_position, first->first_position);
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(4));
}

TEST(Store, RetryInTheSameGroupAsTheOriginalIsIdempotent) {
  TempDir dir;
  auto store = OpenStore(dir);
  std::mutex mu;
  std::vector<AppendResult> results;
  std::atomic<int> done{0};
  for (int i = 0; i < 2; ++i) {
    store->Append("g", ExpectedVersion::Any(), MakeEvents("g", 0, 2), [&](AppendResult r) {
      std::lock_guard lock(mu);
      results.push_back(std::move(r));
      ++done;
    });
  }
  while (done.load() < 2) std::this_thread::yield();
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_EQ(results[0]->first_position, results[1]->first_position);
  EXPECT_NE(results[0]->already_written, results[1]->already_written);
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(2));
}

TEST(Store, ReadStreamBackwardsFromTheEnd) {
  TempDir dir;
  auto store = OpenStore(dir);
  ASSERT_TRUE(store->AppendSync("b", ExpectedVersion::Any(), MakeEvents("b", 0, 5)).ok());
  auto events = store->ReadStream("b", StreamVersion(~uint64_t{0}), 3, Direction::kBackward);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].version, StreamVersion(4));
  EXPECT_EQ((*events)[2].version, StreamVersion(2));
  auto from_one = store->ReadStream("b", StreamVersion(1), 10, Direction::kBackward);
  ASSERT_TRUE(from_one.ok());
  ASSERT_EQ(from_one->size(), 2u);
  EXPECT_EQ((*from_one)[1].version, StreamVersion(0));
}

TEST(Store, ReadOfMissingStreamIsNotFoundAndPastTheEndIsEmpty) {
  TempDir dir;
  auto store = OpenStore(dir);
  EXPECT_EQ(store->ReadStream("none", StreamVersion(0), 10).status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(store->GetStreamInfo("none").has_value());
  ASSERT_TRUE(store->AppendSync("one", ExpectedVersion::Any(), MakeEvents("one", 0, 1)).ok());
  auto past = store->ReadStream("one", StreamVersion(1), 10);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->empty());
  auto all = store->ReadAll(GlobalPosition(1), 10);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST(Store, ReadsSpanManySealedSegments) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    for (uint64_t i = 0; i < 400; ++i) {
      const std::string s = "stream-" + std::to_string(i % 4);
      ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, i / 4, 1, 0, 400)).ok());
    }
    EXPECT_GE(testing::SegmentFiles(dir.path()).size(), 3u);
    auto events = store->ReadStream("stream-1", StreamVersion(10), 80);
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(events->size(), 80u);
    for (uint64_t i = 0; i < 80; ++i) EXPECT_EQ((*events)[i].data, testing::ExpectedData("stream-1", 10 + i, 0, 400));
  }
  auto store = OpenStore(dir);
  EXPECT_EQ(store->recovery().index_files_rebuilt, 0u) << "sealed segments are opened through their index files";
  for (int s = 0; s < 4; ++s) {
    const std::string name = "stream-" + std::to_string(s);
    auto fwd = store->ReadStream(name, StreamVersion(0), 1000);
    ASSERT_TRUE(fwd.ok()) << fwd.status().ToString();
    ASSERT_EQ(fwd->size(), 100u);
    auto back = store->ReadStream(name, StreamVersion(99), 1000, Direction::kBackward);
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(back->size(), 100u);
    for (uint64_t v = 0; v < 100; ++v) {
      EXPECT_EQ((*fwd)[v].version, StreamVersion(v));
      EXPECT_EQ((*back)[99 - v].version, StreamVersion(v));
      EXPECT_EQ((*fwd)[v].data, testing::ExpectedData(name, v, 0, 400));
    }
    auto info = store->GetStreamInfo(name);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->last_version, StreamVersion(99));
  }
  auto all = store->ReadAll(GlobalPosition(0), 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 400u);
  for (uint64_t i = 0; i < 400; ++i) ASSERT_EQ((*all)[i].position, GlobalPosition(i));
  auto mid = store->ReadAll(GlobalPosition(237), 5);
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->size(), 5u);
  EXPECT_EQ((*mid)[0].position, GlobalPosition(237));
}

// A store whose segments each take several ReadBuffer chunks, with batches of 1 to 60
// events of 10 to 3,000 bytes, one batch larger than a chunk and one larger than
// ReadBuffer::kLargestCopiedBatch (read in place). Returns the events appended; sets
// `*chunk_sized_batch` to the first position of the batch larger than a chunk.
uint64_t FillForBufferedReads(const TempDir& dir, uint64_t* chunk_sized_batch = nullptr) {
  Options o;
  o.segment_size = 8u << 20;
  o.max_event_size = 64u << 10;
  o.fill_ahead = 1u << 20;
  auto store = OpenStore(dir, o);
  uint64_t events = 0;
  std::vector<uint64_t> versions(5, 0);
  auto append = [&](size_t stream, size_t count, size_t data_size) {
    const std::string s = "buffered-" + std::to_string(stream);
    ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, versions[stream], count, 3, data_size)).ok());
    versions[stream] += count;
    events += count;
  };
  for (uint64_t i = 0; i < 1500; ++i) append(i % 5, 1 + testing::Mix(i) % 60, 10 + testing::Mix(i + 7) % 3000);
  if (chunk_sized_batch != nullptr) *chunk_sized_batch = events;
  append(0, 100, 3000);       // ~300 KiB: more than a chunk
  append(1, 100, 50u << 10);  // ~5 MiB: read in place
  for (uint64_t i = 0; i < 200; ++i) append(i % 5, 1 + testing::Mix(i) % 20, 100);
  return events;
}

TEST(Store, ReadAllThroughABufferVisitsWhatReadingInPlaceVisits) {
  TempDir dir;
  const uint64_t total = FillForBufferedReads(dir);
  auto store = OpenStore(dir);  // reopened: every batch is verified by the reads
  ASSERT_GE(testing::SegmentFiles(dir.path()).size(), 3u);
  ReadBuffer buffer;
  for (const uint64_t from : {uint64_t{0}, uint64_t{1}, total / 3, total - 1}) {
    // Page through the rest of the log as a subscription does, keeping every view of a call
    // until it returns: what one call read stays put while it goes on reading.
    uint64_t next = from;
    while (next < total) {
      std::vector<EventView> copied;
      auto n = store->ReadAll(GlobalPosition(next), 5000, [&](const EventView& e) { copied.push_back(e); return true; },
                              buffer);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      ASSERT_GT(*n, 0u) << "from " << next;
      auto in_place = store->ReadAll(GlobalPosition(next), *n);
      ASSERT_TRUE(in_place.ok()) << in_place.status().ToString();
      ASSERT_EQ(in_place->size(), copied.size());
      for (size_t k = 0; k < copied.size(); ++k) {
        const EventView& a = copied[k];
        const EventView& b = (*in_place)[k];
        ASSERT_EQ(a.position, GlobalPosition(next + k));
        ASSERT_EQ(a.position, b.position);
        ASSERT_EQ(a.stream, b.stream);
        ASSERT_EQ(a.version, b.version);
        ASSERT_EQ(a.id, b.id);
        ASSERT_EQ(a.type, b.type);
        ASSERT_EQ(a.data, b.data);
        ASSERT_EQ(a.data, testing::ExpectedData(std::string(a.stream), a.version.value, 3, a.data.size()));
        ASSERT_EQ(format::RecordOf(a).size(), format::RecordOf(b).size());
        ASSERT_EQ(std::memcmp(format::RecordOf(a).data(), format::RecordOf(b).data(), format::RecordOf(a).size()), 0);
      }
      next += copied.size();
    }
    EXPECT_EQ(next, total);
  }
  EXPECT_EQ(store->stats().corruption_found, 0u);
}

TEST(Store, ReadAllRecordsHandsWholeBatchesHoldingTheRecordsReadAllVisits) {
  TempDir dir;
  const uint64_t total = FillForBufferedReads(dir);
  auto store = OpenStore(dir);  // reopened: every batch is verified by the reads
  ReadBuffer buffer;
  for (const uint64_t from : {uint64_t{0}, uint64_t{1}, total / 3, total - 1}) {
    uint64_t next = from, runs = 0, multi_event_runs = 0;
    while (next < total) {
      std::vector<EventView> taken;
      auto n = store->ReadAllRecords(GlobalPosition(next), 5000, [&](const Store::RecordRun& run) -> uint32_t {
        EXPECT_EQ(run.first.value, next + taken.size()) << "runs follow one another";
        // Of one stream, at consecutive positions, and nothing else.
        const auto events = testing::EventsOfRun(run);
        EXPECT_TRUE(events) << "the run at " << run.first.value << " does not hold its " << run.count << " events";
        if (events) taken.insert(taken.end(), events->begin(), events->end());
        ++runs;
        multi_event_runs += run.count > 1;
        return run.count;
      }, buffer);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      ASSERT_EQ(*n, taken.size());
      ASSERT_GT(*n, 0u) << "from " << next;
      EXPECT_LT(*n, 5000u + 100u) << "past max_count by less than a batch (of at most 100 here)";
      auto in_place = store->ReadAll(GlobalPosition(next), *n);
      ASSERT_TRUE(in_place.ok()) << in_place.status().ToString();
      ASSERT_EQ(in_place->size(), taken.size());
      for (size_t k = 0; k < taken.size(); ++k) {
        const auto a = format::RecordOf(taken[k]), b = format::RecordOf((*in_place)[k]);
        ASSERT_EQ(a.size(), b.size()) << "at " << next + k;
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << "at " << next + k;
      }
      next += taken.size();
    }
    EXPECT_EQ(next, total);
    if (from < total - 1) {
      EXPECT_GT(multi_event_runs, runs / 2) << "whole batches, not event by event";
    }
  }
  EXPECT_EQ(store->stats().corruption_found, 0u);
}

TEST(Store, ARecordsScanStopsWhereTheReaderTookPartOfARunAndGoesOnFromThere) {
  TempDir dir;
  auto store = OpenStore(dir);
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 3 * i, 3)).ok());
  }
  ReadBuffer buffer;
  std::vector<std::pair<uint64_t, uint32_t>> offered;  // (first, count)
  auto n = store->ReadAllRecords(GlobalPosition(1), 100, [&](const Store::RecordRun& run) -> uint32_t {
    offered.emplace_back(run.first.value, run.count);
    return offered.size() == 1 ? run.count : 1;  // all of the first, one of the second
  }, buffer);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(offered, (std::vector<std::pair<uint64_t, uint32_t>>{{1, 2}, {3, 3}}))
      << "from the middle of a batch, then whole batches, until one is taken in part";
  EXPECT_EQ(*n, 2u + 1u);

  offered.clear();
  auto left = store->ReadAllRecords(GlobalPosition(4), 100, [&](const Store::RecordRun& run) -> uint32_t {
    offered.emplace_back(run.first.value, run.count);
    return 0;
  }, buffer);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 0u) << "a run left is not counted";
  EXPECT_EQ(offered, (std::vector<std::pair<uint64_t, uint32_t>>{{4, 2}})) << "the rest of the batch taken in part";

  // A run counts whole towards max_count: 4 takes two runs.
  std::vector<uint32_t> counts;
  auto m = store->ReadAllRecords(GlobalPosition(6), 4, [&](const Store::RecordRun& run) -> uint32_t {
    counts.push_back(run.count);
    return run.count;
  }, buffer);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, 6u);
  EXPECT_EQ(counts, (std::vector<uint32_t>{3, 3}));
}

TEST(Store, TheFrontOfARunIsWhatFitsAGivenCountAndSize) {
  TempDir dir;
  auto store = OpenStore(dir);
  ASSERT_TRUE(store->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 4, 0, 100)).ok());
  ReadBuffer buffer;
  Store::RecordRun whole;
  ASSERT_TRUE(store->ReadAllRecords(GlobalPosition(0), 10, [&](const Store::RecordRun& run) -> uint32_t {
    whole = run;
    return run.count;
  }, buffer).ok());
  ASSERT_EQ(whole.count, 4u);
  const size_t one = whole.records.size() / 4;  // equal events, equal records
  ASSERT_EQ(one * 4, whole.records.size());

  auto front = whole.Front(10, whole.records.size());
  EXPECT_EQ(front.count, 4u);
  EXPECT_EQ(front.records.data(), whole.records.data());
  front = whole.Front(2, whole.records.size());
  EXPECT_EQ(front.count, 2u);
  EXPECT_EQ(front.records.size(), 2 * one);
  front = whole.Front(10, 3 * one - 1);
  EXPECT_EQ(front.count, 2u) << "records that fit the bytes, whole";
  EXPECT_EQ(front.records.size(), 2 * one);
  EXPECT_EQ(front.first, whole.first);
  EXPECT_EQ(front.stream, "s");
  EXPECT_EQ(whole.Front(10, one - 1).count, 0u);
  EXPECT_EQ(whole.Front(0, whole.records.size()).count, 0u);
}

TEST(Store, AFilteredReadAllVisitsTheWantedStreamsAndPassesTheOthersWholeBatches) {
  TempDir dir;
  auto store = OpenStore(dir);
  // "keep" events in single-event batches between "skip" batches of 1..7 events.
  std::vector<uint64_t> kept;
  uint64_t position = 0, keep_version = 0, skip_version = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const size_t n = 1 + i % 7;
    ASSERT_TRUE(store->AppendSync("skip", ExpectedVersion::Any(), MakeEvents("skip", skip_version, n)).ok());
    skip_version += n;
    position += n;
    ASSERT_TRUE(store->AppendSync("keep", ExpectedVersion::Any(), MakeEvents("keep", keep_version++, 1)).ok());
    kept.push_back(position++);
  }
  ASSERT_TRUE(store->AppendSync("skip", ExpectedVersion::Any(), MakeEvents("skip", skip_version, 3)).ok());
  const uint64_t end = position + 3;
  const std::function<bool(std::string_view)> wants = [](std::string_view s) { return s == "keep"; };

  // Paged as the order projection pages: each call goes on from past what it visited or passed.
  std::vector<uint64_t> visited;
  uint64_t next = 0, calls = 0;
  TimestampMicros last_commit = 0;
  while (next < end) {
    const uint64_t from = next;
    Store::Passed passed{GlobalPosition(next), 0};
    auto n = store->ReadAll(GlobalPosition(next), 10, [&](const EventView& e) {
      EXPECT_EQ(e.stream, "keep");
      visited.push_back(e.position.value);
      next = e.position.value + 1;
      last_commit = e.timestamp;
      return true;
    }, wants, &passed);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (passed.end.value > next) {
      next = passed.end.value;
      last_commit = passed.timestamp;
    }
    // The commit time reported for the checkpoint is that of the event just below it.
    auto below = store->ReadAll(GlobalPosition(next - 1), 1);
    ASSERT_TRUE(below.ok());
    ASSERT_EQ(below->at(0).position.value, next - 1);
    EXPECT_EQ(below->at(0).timestamp, last_commit) << "at " << next;
    // Passed events count towards max_count, so one call's work stays bounded: it stops at
    // the batch that reaches 10 (of at most 7 events here).
    EXPECT_LE(next - from, 10u + 6u) << "from " << from;
    ASSERT_LT(++calls, 1000u) << "no progress";
  }
  EXPECT_EQ(visited, kept);

  Store::Passed none{GlobalPosition(end), 0};
  auto at_end = store->ReadAll(GlobalPosition(end), 10, [](const EventView&) { return true; }, wants, &none);
  ASSERT_TRUE(at_end.ok());
  EXPECT_EQ(*at_end, 0u);
  EXPECT_EQ(none.end.value, end) << "nothing past the end is passed";
}

TEST(Store, ABatchLargerThanAChunkIsReadWholeOnceIntoTheBuffer) {
  TempDir dir;
  uint64_t first = 0;
  FillForBufferedReads(dir, &first);
  auto store = OpenStore(dir);
  ReadBuffer buffer;
  uint64_t bytes = 0;
  auto n = store->ReadAll(
      GlobalPosition(first), 100,
      [&](const EventView& e) {
        bytes += format::RecordOf(e).size();
        return true;
      },
      buffer);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, 100u);
  ASSERT_GT(bytes, ReadBuffer::kChunkBytes);
  // The chunk read ahead at its start, too short for it, is reused for the whole batch.
  EXPECT_GE(buffer.taken_bytes(), bytes);
  EXPECT_LT(buffer.taken_bytes(), bytes + 4096) << "read once, not once as a chunk and again whole";
}

TEST(Store, AFilteredReadThroughABufferStopsOnceItHasReadItsMostAndGoesOnFromThere) {
  TempDir dir;
  const uint64_t total = FillForBufferedReads(dir);
  auto store = OpenStore(dir);
  ReadBuffer buffer(256u << 10);
  uint64_t next = 0, calls = 0, kept = 0;
  while (next < total) {
    auto n = store->ReadAll(
        GlobalPosition(next), 1'000'000,
        [&](const EventView& e) {
          EXPECT_EQ(e.position.value, next);
          next = e.position.value + 1;
          kept += e.stream == "buffered-4";  // a filter that keeps few
          return true;
        },
        buffer);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_GT(*n, 0u);
    // At most its most, plus one batch (the large one is read in place) or one chunk.
    EXPECT_LE(buffer.taken_bytes(), (256u << 10) + (512u << 10));
    ++calls;
  }
  EXPECT_EQ(next, total);
  EXPECT_GT(calls, 5u) << "the log is ~12 MiB: a 256 KiB buffer cannot take it in one call";
  EXPECT_GT(kept, 0u);
  buffer.Release();
  EXPECT_EQ(buffer.held_bytes(), 0u);
}

TEST(Store, ExpectedVersionAfterReopenUsesTheSealedIndex) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    ASSERT_TRUE(store->AppendSync("early", ExpectedVersion::NoStream(), MakeEvents("early", 0, 3)).ok());
    for (uint64_t i = 0; i < 300; ++i) {
      ASSERT_TRUE(store->AppendSync("filler", ExpectedVersion::Any(), MakeEvents("filler", i, 1, 0, 400)).ok());
    }
  }
  auto store = OpenStore(dir);
  auto wrong = store->AppendSync("early", ExpectedVersion::NoStream(), MakeEvents("early", 3, 1, 5));
  ASSERT_EQ(wrong.status().code(), Status::Code::kWrongExpectedVersion);
  EXPECT_EQ(wrong.status().actual_version(), StreamVersion(2));
  auto right = store->AppendSync("early", ExpectedVersion::Exact(StreamVersion(2)), MakeEvents("early", 3, 1));
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_EQ(right->first_version, StreamVersion(3));
}

TEST(Store, TimestampsNeverGoBackwards) {
  TempDir dir;
  auto store = OpenStore(dir);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(store->AppendSync("t", ExpectedVersion::Any(), MakeEvents("t", i, 1)).ok());
  auto all = store->ReadAll(GlobalPosition(0), 100);
  ASSERT_TRUE(all.ok());
  for (size_t i = 1; i < all->size(); ++i) EXPECT_LE((*all)[i - 1].timestamp, (*all)[i].timestamp);
}

TEST(Store, ConcurrentExactAppendsToOneStreamHaveOneWinnerPerVersion) {
  TempDir dir;
  Options options = SmallOptions();
  options.segment_size = 1 << 20;
  auto store = OpenStore(dir, options);
  constexpr int kThreads = 8;
  constexpr uint64_t kVersions = 200;
  std::mutex mu;
  std::map<uint64_t, int> winners;  // version -> thread
  std::atomic<int> wrong_versions{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t attempt = 0;
      while (true) {
        auto info = store->GetStreamInfo("race");
        const uint64_t next = info ? info->last_version.value + 1 : 0;
        if (next >= kVersions) return;
        auto expected = info ? ExpectedVersion::Exact(info->last_version) : ExpectedVersion::NoStream();
        auto r = store->AppendSync("race", expected, MakeEvents("race", next, 1, 1000 * t + ++attempt));
        if (r.ok()) {
          ASSERT_EQ(r->first_version, StreamVersion(next));
          std::lock_guard lock(mu);
          ASSERT_TRUE(winners.emplace(next, t).second) << "two winners for version " << next;
        } else {
          ASSERT_EQ(r.status().code(), Status::Code::kWrongExpectedVersion) << r.status().ToString();
          ASSERT_TRUE(r.status().actual_version().has_value());
          EXPECT_GE(r.status().actual_version()->value, next) << "the stream had moved past the expected version";
          ++wrong_versions;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto events = store->ReadStream("race", StreamVersion(0), 1000);
  ASSERT_TRUE(events.ok());
  ASSERT_GE(events->size(), kVersions);
  for (uint64_t v = 0; v < events->size(); ++v) {
    ASSERT_EQ((*events)[v].version, StreamVersion(v));
    if (v < kVersions) {
      ASSERT_TRUE(winners.count(v)) << v;
      // The stored event is the winner's.
      bool from_winner = false;
      for (uint64_t a = 1; a < 10000 && !from_winner; ++a) {
        from_winner = (*events)[v].id == MakeEvent("race", v, 1000 * winners[v] + a).id;
      }
      EXPECT_TRUE(from_winner) << "version " << v;
    }
  }
  std::printf("%d conflicting appends were rejected\n", wrong_versions.load());
}

TEST(Store, GroupCommitSharesOneSyncAmongConcurrentAppends) {
  TempDir dir;
  auto store = OpenStore(dir);
  std::atomic<int> done{0};
  constexpr int kAppends = 500;
  for (int i = 0; i < kAppends; ++i) {
    const std::string s = "gc-" + std::to_string(i);
    store->Append(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1), [&](AppendResult r) {
      EXPECT_TRUE(r.ok());
      ++done;
    });
  }
  while (done.load() < kAppends) std::this_thread::yield();
  const StoreStats stats = store->stats();
  EXPECT_EQ(stats.appends, uint64_t{kAppends});
  EXPECT_LT(stats.fsyncs, uint64_t{kAppends}) << "queued appends are committed in groups";
  EXPECT_EQ(stats.fsyncs, stats.groups);
}

TEST(Store, DurableObserverSeesEveryAdvance) {
  TempDir dir;
  auto store = OpenStore(dir);
  std::atomic<uint64_t> seen{0};
  const uint64_t handle = store->AddDurableObserver([&](GlobalPosition p) { seen = p.value; });
  ASSERT_TRUE(store->AppendSync("o", ExpectedVersion::Any(), MakeEvents("o", 0, 3)).ok());
  EXPECT_EQ(seen.load(), 3u) << "the observer runs before the append's callback";
  store->RemoveDurableObserver(handle);
  ASSERT_TRUE(store->AppendSync("o", ExpectedVersion::Any(), MakeEvents("o", 3, 1)).ok());
  EXPECT_EQ(seen.load(), 3u);
}

TEST(Store, InvalidAppendsAreRejectedAndWriteNothing) {
  TempDir dir;
  auto store = OpenStore(dir);
  auto code = [&](std::string stream, std::vector<EventData> events) {
    return store->AppendSync(std::move(stream), ExpectedVersion::Any(), std::move(events)).status().code();
  };
  const auto kInvalid = Status::Code::kInvalidArgument;
  EXPECT_EQ(code("", MakeEvents("x", 0, 1)), kInvalid);
  EXPECT_EQ(code("$system", MakeEvents("x", 0, 1)), kInvalid);
  EXPECT_EQ(code(std::string(256, 'n'), MakeEvents("x", 0, 1)), kInvalid);
  EXPECT_EQ(code("bad\nname", MakeEvents("x", 0, 1)), kInvalid);
  EXPECT_EQ(code("bad\xff", MakeEvents("x", 0, 1)), kInvalid);
  EXPECT_EQ(code("ok", {}), kInvalid);
  auto too_big = MakeEvents("ok", 0, 1, 0, 17 * 1024);
  EXPECT_EQ(code("ok", too_big), kInvalid);
  auto nil_id = MakeEvents("ok", 0, 1);
  nil_id[0].id = EventId();
  EXPECT_EQ(code("ok", nil_id), kInvalid);
  auto twice = MakeEvents("ok", 0, 2);
  twice[1].id = twice[0].id;
  EXPECT_EQ(code("ok", twice), kInvalid);
  auto no_type = MakeEvents("ok", 0, 1);
  no_type[0].type.clear();
  EXPECT_EQ(code("ok", no_type), kInvalid);
  Options few = SmallOptions();
  few.max_events_per_append = 3;
  store.reset();
  store = OpenStore(dir, few);
  EXPECT_EQ(code("ok", MakeEvents("ok", 0, 4)), kInvalid);
  auto message = store->AppendSync("$x", ExpectedVersion::Any(), MakeEvents("x", 0, 1)).status().message();
  EXPECT_NE(message.find("reserved"), std::string::npos) << message;
  EXPECT_EQ(store->DurablePosition(), GlobalPosition(0));
  EXPECT_TRUE(store->AppendSync("ok", ExpectedVersion::Any(), MakeEvents("ok", 0, 3)).ok()) << "the store carries on";
}

TEST(Store, SecondOpenOfTheSameDirectoryIsRefused) {
  TempDir dir;
  auto store = OpenStore(dir);
  auto second = Store::Open(dir.path(), SmallOptions());
  ASSERT_EQ(second.status().code(), Status::Code::kLocked);
  EXPECT_NE(second.status().message().find("pid"), std::string::npos) << second.status().message();
  store.reset();
  EXPECT_TRUE(Store::Open(dir.path(), SmallOptions()).ok()) << "the lock goes with the store";
}

TEST(Store, BadOptionsAreRefused) {
  TempDir dir;
  Options o = SmallOptions();
  o.segment_size = 1000;
  EXPECT_EQ(Store::Open(dir.path(), o).status().code(), Status::Code::kInvalidArgument);
  o = SmallOptions();
  o.max_event_size = 32u << 20;
  EXPECT_EQ(Store::Open(dir.path(), o).status().code(), Status::Code::kInvalidArgument);
}

TEST(Store, DurabilityModesParse) {
  EXPECT_EQ(DurabilityMode::Parse("always")->mode, Durability::kAlways);
  EXPECT_EQ(DurabilityMode::Parse("never")->mode, Durability::kNever);
  auto interval = DurabilityMode::Parse("interval=25");
  ASSERT_TRUE(interval.ok());
  EXPECT_EQ(interval->interval, std::chrono::milliseconds(25));
  EXPECT_EQ(interval->ToString(), "interval=25");
  EXPECT_FALSE(DurabilityMode::Parse("interval=").ok());
  EXPECT_FALSE(DurabilityMode::Parse("sometimes").ok());
}

TEST(Store, IntervalAndNeverModesKeepEveryAcknowledgedEventAcrossReopen) {
  for (const char* mode : {"interval=5", "never"}) {
    TempDir dir;
    Options o = SmallOptions();
    o.durability = DurabilityMode::Parse(mode).value();
    {
      auto store = OpenStore(dir, o);
      for (int i = 0; i < 300; ++i) {
        ASSERT_TRUE(store->AppendSync("m", ExpectedVersion::Any(), MakeEvents("m", i, 1, 0, 300)).ok()) << mode;
      }
    }
    auto store = OpenStore(dir, o);
    auto info = store->GetStreamInfo("m");
    ASSERT_TRUE(info.has_value()) << mode;
    EXPECT_EQ(info->event_count, 300u) << mode;
  }
}

// Every stream that starts with `prefix`, following pages of `limit` from the first; checks
// what each page says about the next.
std::vector<std::pair<std::string, StreamInfo>> ListByPages(const Store& store, std::string_view prefix, size_t limit) {
  std::vector<std::pair<std::string, StreamInfo>> all;
  std::string after;
  for (int pages = 0; pages < 100'000; ++pages) {
    StreamListPage page = store.ListStreams(prefix, after, limit);
    EXPECT_LE(page.streams.size(), limit);
    for (auto& entry : page.streams) all.push_back(std::move(entry));
    if (!page.more) return all;
    EXPECT_EQ(page.streams.size(), limit) << "a page that has more after it is full";
    if (page.streams.empty()) break;
    after = all.back().first;
  }
  ADD_FAILURE() << "the pages did not end";
  return all;
}

std::vector<std::string> NamesOf(const std::vector<std::pair<std::string, StreamInfo>>& listed) {
  std::vector<std::string> names;
  for (const auto& [name, info] : listed) names.push_back(name);
  return names;
}

std::vector<std::string> PageNames(const Store& store, std::string_view prefix, std::string_view after, size_t limit,
                                   bool* more) {
  StreamListPage page = store.ListStreams(prefix, after, limit);
  *more = page.more;
  return NamesOf(page.streams);
}

// Appends 1 KiB events to `stream` until the store has `segments` segment files.
void AppendUntilSegments(Store& store, const TempDir& dir, const std::string& stream, size_t segments) {
  auto info = store.GetStreamInfo(stream);
  uint64_t next = info ? info->event_count : 0;
  while (testing::SegmentFiles(dir.path()).size() < segments) {
    ASSERT_TRUE(store.AppendSync(stream, ExpectedVersion::Any(), MakeEvents(stream, next++, 1, 0, 1000)).ok());
  }
}

TEST(Store, ListStreamsPagesInNameOrderAcrossSealedSegmentsAndTheTail) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    for (int i = 0; i < 300; ++i) {
      const int k = i % 41;
      const std::string s = (k % 2 ? "odd-" : "even-") + std::to_string(k);
      auto info = store->GetStreamInfo(s);
      ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, info ? info->event_count : 0, 1, 0, 300)).ok());
    }
    ASSERT_GE(testing::SegmentFiles(dir.path()).size(), 3u);
  }
  auto store = OpenStore(dir);  // most streams are now known only from the index files
  ASSERT_TRUE(store->AppendSync("new-one", ExpectedVersion::Any(), MakeEvents("new-one", 0, 2)).ok());
  ASSERT_TRUE(store->AppendSync("even-100", ExpectedVersion::Any(), MakeEvents("even-100", 0, 1)).ok());
  std::vector<std::string> expected = {"new-one", "even-100"};
  for (int k = 0; k < 41; ++k) expected.push_back((k % 2 ? "odd-" : "even-") + std::to_string(k));
  std::sort(expected.begin(), expected.end());

  const auto all = ListByPages(*store, "", 5);
  EXPECT_EQ(NamesOf(all), expected);
  uint64_t total = 0;
  for (const auto& [name, info] : all) {
    auto direct = store->GetStreamInfo(name);
    ASSERT_TRUE(direct.has_value()) << name;
    EXPECT_EQ(info.last_version, direct->last_version) << name;
    EXPECT_EQ(info.event_count, direct->event_count) << name;
    EXPECT_EQ(info.last_position, direct->last_position) << name;
    EXPECT_EQ(info.last_write, direct->last_write) << name;
    total += info.event_count;
  }
  EXPECT_EQ(total, 303u);

  std::vector<std::string> odd;
  for (const auto& name : expected) {
    if (name.rfind("odd-", 0) == 0) odd.push_back(name);
  }
  EXPECT_EQ(odd.size(), 20u);
  EXPECT_EQ(NamesOf(ListByPages(*store, "odd-", 4)), odd);
}

TEST(Store, ListStreamsStartsAfterTheGivenNameAndKeepsToThePrefix) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    for (const std::string s : {"a", "b-1", "b-2", "b-3", "c"}) {
      ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1)).ok());
    }
    AppendUntilSegments(*store, dir, "~filler", 3);  // the five are only in a sealed segment
  }
  for (bool reopened : {false, true}) {
    SCOPED_TRACE(reopened ? "names from an index file" : "names written since open");
    TempDir fresh;
    const TempDir& where = reopened ? dir : fresh;
    auto store = OpenStore(where);
    if (!reopened) {
      for (const std::string s : {"a", "b-1", "b-2", "b-3", "c", "~filler"}) {
        ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1)).ok());
      }
    }
    using Names = std::vector<std::string>;
    bool more = true;
    EXPECT_EQ(PageNames(*store, "b-", "", 10, &more), (Names{"b-1", "b-2", "b-3"}));
    EXPECT_FALSE(more) << "'c' follows, but does not start with the prefix";
    EXPECT_EQ(PageNames(*store, "b-", "b-1", 10, &more), (Names{"b-2", "b-3"}));
    EXPECT_EQ(PageNames(*store, "b-", "b-15", 10, &more), (Names{"b-2", "b-3"})) << "`after` need not be a stream";
    EXPECT_EQ(PageNames(*store, "b-", "a", 10, &more), (Names{"b-1", "b-2", "b-3"})) << "`after` before the prefix";
    EXPECT_EQ(PageNames(*store, "b-", "b-3", 10, &more), Names{});
    EXPECT_FALSE(more);
    EXPECT_EQ(PageNames(*store, "b-", "c", 10, &more), Names{});
    EXPECT_FALSE(more);
    EXPECT_EQ(PageNames(*store, "", "b-2", 2, &more), (Names{"b-3", "c"}));
    EXPECT_TRUE(more) << "'~filler' follows";
    EXPECT_EQ(PageNames(*store, "", "c", 2, &more), Names{"~filler"});
    EXPECT_FALSE(more);
    EXPECT_EQ(PageNames(*store, "zz", "", 2, &more), Names{});
    EXPECT_FALSE(more);
  }
}

TEST(Store, ListStreamsSaysMoreExactlyWhenAnotherMatchingStreamFollows) {
  TempDir dir;
  auto store = OpenStore(dir);
  for (int i = 0; i < 10; ++i) {
    const std::string s = "p-" + std::to_string(i);
    ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1)).ok());
  }
  ASSERT_TRUE(store->AppendSync("q", ExpectedVersion::NoStream(), MakeEvents("q", 0, 1)).ok());
  bool more = false;
  EXPECT_EQ(PageNames(*store, "p-", "", 10, &more).size(), 10u);
  EXPECT_FALSE(more) << "a full page that holds the last match is the end";
  EXPECT_EQ(PageNames(*store, "p-", "", 9, &more).size(), 9u);
  EXPECT_TRUE(more);
  EXPECT_EQ(PageNames(*store, "p-", "p-7", 1, &more), std::vector<std::string>{"p-8"});
  EXPECT_TRUE(more);
  EXPECT_EQ(PageNames(*store, "p-", "p-8", 1, &more), std::vector<std::string>{"p-9"});
  EXPECT_FALSE(more);
  EXPECT_TRUE(PageNames(*store, "p-", "", 0, &more).empty());
  EXPECT_TRUE(more) << "an empty page asked for says whether anything matches";
}

TEST(Store, StreamsWrittenAfterAPageWasReadAppearInTheNextPages) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    for (const std::string s : {"m-10", "m-20", "m-30"}) {
      ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1)).ok());
    }
    AppendUntilSegments(*store, dir, "~filler", 3);
  }
  auto store = OpenStore(dir);
  bool more = false;
  EXPECT_EQ(PageNames(*store, "m-", "", 2, &more), (std::vector<std::string>{"m-10", "m-20"}));
  EXPECT_TRUE(more);
  for (const std::string s : {"m-25", "m-05", "m-40"}) {
    ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1)).ok());
  }
  ASSERT_TRUE(store->AppendSync("m-10", ExpectedVersion::Any(), MakeEvents("m-10", 1, 1)).ok()) << "a known stream";
  EXPECT_EQ(PageNames(*store, "m-", "m-20", 10, &more), (std::vector<std::string>{"m-25", "m-30", "m-40"}));
  EXPECT_FALSE(more);
  EXPECT_EQ(NamesOf(ListByPages(*store, "m-", 2)),
            (std::vector<std::string>{"m-05", "m-10", "m-20", "m-25", "m-30", "m-40"}));
  EXPECT_EQ(store->StreamCount(), 7u);
  EXPECT_EQ(store->GetStreamInfo("m-10")->event_count, 2u);
  EXPECT_EQ(ListByPages(*store, "m-10", 1).at(0).second.event_count, 2u) << "a page shows the stream as it is now";
}

TEST(Store, PagingWhileStreamsAreCreatedListsEveryEarlierStreamOnceInOrder) {
  TempDir dir;
  auto store = OpenStore(dir);
  std::set<std::string> before;
  for (int i = 0; i < 200; ++i) {
    const std::string s = "s-" + std::to_string(testing::Mix(i) % 100'000);
    if (before.insert(s).second) {
      ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::NoStream(), MakeEvents(s, 0, 1, 0, 300)).ok());
    }
  }
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 400 && !done.load(); ++i) {
      const std::string s = "s-" + std::to_string(testing::Mix(1000 + i) % 100'000);
      if (before.count(s) == 0) (void)store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, 0, 1, 0, 300));
    }
  });
  std::vector<std::string> seen;
  for (int round = 0; round < 5; ++round) seen = NamesOf(ListByPages(*store, "s-", 3));
  done = true;
  writer.join();
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "no stream twice";
  for (const auto& s : before) EXPECT_TRUE(std::binary_search(seen.begin(), seen.end(), s)) << s;
  EXPECT_EQ(NamesOf(ListByPages(*store, "s-", 1000)).size(), store->StreamCount());
}

TEST(Store, StreamCountIsWhatPagingListsAfterReopenToo) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    EXPECT_EQ(store->StreamCount(), 0u);
    for (int i = 0; i < 300; ++i) {
      const std::string s = "c-" + std::to_string(i % 11);
      ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, i / 11, 1, 0, 300)).ok());
    }
    EXPECT_EQ(store->StreamCount(), 11u);
    EXPECT_EQ(ListByPages(*store, "", 4).size(), 11u);
  }
  auto store = OpenStore(dir);  // from the newest index file, plus the tail
  EXPECT_EQ(store->StreamCount(), 11u);
  ASSERT_TRUE(store->AppendSync("c-3", ExpectedVersion::Any(), MakeEvents("c-3", 28, 1)).ok()) << "a known stream";
  ASSERT_TRUE(store->AppendSync("fresh", ExpectedVersion::Any(), MakeEvents("fresh", 0, 1)).ok());
  EXPECT_EQ(store->StreamCount(), 12u);
  EXPECT_EQ(ListByPages(*store, "", 4).size(), store->StreamCount());
  EXPECT_EQ(StoreFileBytes(dir.path()), [&] {
    uint64_t b = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir.path() / "segments")) {
      if (f.path().extension() == ".seg" || f.path().extension() == ".idx") b += f.file_size();
    }
    return b;
  }());
}

TEST(Store, AStreamOnlyInASealedSegmentWhoseIndexFileIsMissingAtOpenIsListed) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    AppendUntilSegments(*store, dir, "early", 2);
    ASSERT_TRUE(store->AppendSync("middle", ExpectedVersion::NoStream(), MakeEvents("middle", 0, 3, 0, 1000)).ok());
    AppendUntilSegments(*store, dir, "late", 3);
  }
  auto idx = testing::SegmentFiles(dir.path()).at(1);  // the only segment that holds "middle"
  idx.replace_extension(".idx");
  ASSERT_TRUE(std::filesystem::remove(idx));
  // The disk is full: open cannot write the index again, and serves that segment from memory.
  testing::ScriptedFaults full_disk([](FileOp op, const std::filesystem::path& path) {
    const std::string name = path.filename().string();
    const bool index = name.size() > 8 && name.compare(name.size() - 8, 8, ".idx.tmp") == 0;
    return op == FileOp::kOpen && index ? InjectedFault{ENOSPC} : InjectedFault{};
  });
  auto store = OpenStore(dir);
  ASSERT_TRUE(store->GetStreamInfo("middle").has_value());
  const auto listed = ListByPages(*store, "", 2);
  EXPECT_EQ(NamesOf(listed), (std::vector<std::string>{"early", "late", "middle"}));
  for (const auto& [name, info] : listed) {
    // "early" has its last event in that segment: the index file before it is out of date.
    EXPECT_EQ(info.event_count, store->GetStreamInfo(name)->event_count) << name;
    EXPECT_EQ(info.last_position, store->GetStreamInfo(name)->last_position) << name;
  }
  EXPECT_EQ(store->StreamCount(), 3u);
}

TEST(Store, AnInterruptedBackupIsRefusedAtOpenAndNamedByVerify) {
  TempDir dir, backup_dir;
  const auto copy = backup_dir.path() / "copy";
  {
    auto store = OpenStore(dir);
    ASSERT_TRUE(store->AppendSync("b", ExpectedVersion::Any(), MakeEvents("b", 0, 10)).ok());
    ASSERT_TRUE(store->Backup(copy).ok());
  }
  ASSERT_TRUE(MarkBackupInProgress(copy).ok());  // as a copy killed half way leaves it
  auto opened = Store::Open(copy, testing::SmallOptions());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(opened.status().message().find("unfinished backup"), std::string::npos) << opened.status().message();
  auto report = VerifyStore(copy);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 1u);
  EXPECT_EQ(report->problems[0].file, kBackupInProgressFile);
}

TEST(Store, ABackupTakenWhileAppendingHoldsEveryEventBelowItsPositionByteForByte) {
  TempDir dir, backup_dir;
  auto store = OpenStore(dir);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = 0; !stop.load(); ++i) {
      ASSERT_TRUE(store->AppendSync("b", ExpectedVersion::Any(), MakeEvents("b", i, 1, 0, 300)).ok());
    }
  });
  while (store->DurablePosition().value < 400) std::this_thread::yield();  // several segments
  uint64_t last_done = 0;
  bool marked = true;
  auto upto = store->Backup(backup_dir.path() / "copy", [&](uint64_t done, uint64_t total) {
    EXPECT_LE(done, total);
    last_done = done;
    if (done < total) marked = marked && std::filesystem::exists(backup_dir.path() / "copy" / kBackupInProgressFile);
  });
  EXPECT_TRUE(marked) << "marked unfinished while it copies";
  EXPECT_FALSE(std::filesystem::exists(backup_dir.path() / "copy" / kBackupInProgressFile)) << "and no longer";
  stop = true;
  writer.join();
  ASSERT_TRUE(upto.ok()) << upto.status().ToString();
  EXPECT_GE(upto->value, 400u);
  EXPECT_GT(last_done, 0u);

  auto copy = Store::Open(backup_dir.path() / "copy", SmallOptions());
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ((*copy)->DurablePosition(), *upto) << "the copy holds exactly what was durable when it began";
  auto original = store->ReadAll(GlobalPosition(0), upto->value);
  auto copied = (*copy)->ReadAll(GlobalPosition(0), upto->value);
  ASSERT_TRUE(original.ok() && copied.ok());
  ASSERT_EQ(copied->size(), original->size());
  for (size_t i = 0; i < copied->size(); ++i) {
    ASSERT_EQ((*copied)[i].id, (*original)[i].id) << i;
    ASSERT_EQ((*copied)[i].data, (*original)[i].data) << i;
    ASSERT_EQ((*copied)[i].timestamp, (*original)[i].timestamp) << i;
  }
  EXPECT_TRUE((*copy)->AppendSync("after", ExpectedVersion::NoStream(), MakeEvents("after", 0, 1)).ok())
      << "the copy is a store that takes appends";
  EXPECT_EQ(store->Backup(backup_dir.path() / "copy").status().code(), Status::Code::kInvalidArgument)
      << "never into a directory that holds something";
}

// ---- Nothing unverified is served ----

// 600 events of 300 bytes over four streams: about ten 64 KiB segments. Returns the store's
// first_position and offset of batch `batch` of segment `segment`, after flipping a byte
// inside its first event's data.
struct Flipped {
  std::filesystem::path file;
  uint64_t offset;
  uint64_t position;
  std::string stream;
};

Flipped FillAndFlip(const TempDir& dir, size_t segment, size_t batch) {
  {
    auto store = OpenStore(dir);
    for (int i = 0; i < 600; ++i) {
      const std::string s = "d-" + std::to_string(i % 4);
      EXPECT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, i / 4, 1, 0, 300)).ok());
    }
  }
  const auto file = testing::SegmentFiles(dir.path()).at(segment);
  const uint64_t offset = testing::BatchOffsets(file).at(batch);
  const auto bytes = testing::ReadFileBytes(file);
  format::BatchHeader h;
  std::memcpy(&h, bytes.data() + offset, sizeof(h));
  format::EventView e;
  uint32_t size;
  EXPECT_TRUE(format::ParseEvent(std::span(bytes).subspan(offset + format::kBatchHeaderSize), &e, &size));
  Flipped f{file, offset, h.first_position, std::string(e.stream)};
  testing::FlipByte(file, offset + format::kBatchHeaderSize + size - 20);  // inside the data
  return f;
}

void ExpectDamageAt(const Status& s, const Flipped& f) {
  ASSERT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  ASSERT_TRUE(s.damage().has_value()) << s.ToString();
  EXPECT_EQ(s.damage()->file, "segments/" + f.file.filename().string());
  EXPECT_EQ(s.damage()->offset, f.offset);
  EXPECT_EQ(s.damage()->position, f.position);
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();
}

TEST(StoreDamage, ABatchThatDoesNotVerifyIsNeverServedByAnyReadPath) {
  TempDir dir;
  const Flipped f = FillAndFlip(dir, 1, 10);
  auto store = OpenStore(dir);  // sealed segments are not scanned at open
  ASSERT_NE(store, nullptr);

  auto stream = store->ReadStream(f.stream, StreamVersion(0), 1000);
  ExpectDamageAt(stream.status(), f);
  auto backwards = store->ReadStream(f.stream, StreamVersion(1000), 1000, Direction::kBackward);
  ExpectDamageAt(backwards.status(), f);

  uint64_t seen = 0;
  auto all = store->ReadAll(GlobalPosition(0), 1'000'000, [&](const EventView& e) {
    EXPECT_EQ(e.position.value, seen);
    ++seen;
    return true;
  });
  ExpectDamageAt(all.status(), f);
  EXPECT_EQ(seen, f.position) << "$all stops at the damage, after every event before it";
  ExpectDamageAt(store->ReadAll(GlobalPosition(f.position), 10).status(), f);

  TempDir copy;
  ExpectDamageAt(store->Backup(copy.path() / "b").status(), f);
  EXPECT_EQ(store->stats().corruption_found, 1u) << "one damaged batch, counted once";
}

TEST(StoreDamage, AFilteredReadAllStopsAtDamageInABatchItWouldHavePassed) {
  TempDir dir;
  const Flipped f = FillAndFlip(dir, 1, 10);
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  const std::string other = f.stream;
  const std::function<bool(std::string_view)> wants = [&](std::string_view s) { return s != other; };
  uint64_t next = 0;
  Status damage;
  for (int calls = 0; calls < 1000 && next < 600; ++calls) {
    Store::Passed passed{GlobalPosition(next), 0};
    auto n = store->ReadAll(GlobalPosition(next), 50, [&](const EventView& e) {
      next = e.position.value + 1;
      return true;
    }, wants, &passed);
    if (!n.ok()) {
      damage = n.status();
      break;
    }
    next = std::max(next, passed.end.value);
  }
  ExpectDamageAt(damage, f);
  EXPECT_EQ(next, f.position) << "it passed nothing beyond the damage";
}

TEST(StoreDamage, ABatchThatDoesNotVerifyIsNeverServedThroughAReadBuffer) {
  TempDir dir;
  const Flipped f = FillAndFlip(dir, 1, 10);
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  ReadBuffer buffer;
  uint64_t seen = 0;
  auto all = store->ReadAll(
      GlobalPosition(0), 1'000'000,
      [&](const EventView& e) {
        EXPECT_EQ(e.position.value, seen);
        ++seen;
        return true;
      },
      buffer);
  ExpectDamageAt(all.status(), f);
  EXPECT_EQ(seen, f.position) << "$all stops at the damage, after every event before it";
  auto again = store->ReadAll(GlobalPosition(f.position), 10, [](const EventView&) { return true; }, buffer);
  ExpectDamageAt(again.status(), f);
  // Past the damage, what follows it is served.
  auto after = store->ReadAll(GlobalPosition(f.position + 1), 1'000'000, [](const EventView&) { return true; }, buffer);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, 600 - f.position - 1);
}

TEST(StoreDamage, ARecordsScanNeverHandsADamagedBatch) {
  TempDir dir;
  const Flipped f = FillAndFlip(dir, 1, 10);
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  ReadBuffer buffer;
  uint64_t next = 0;
  auto all = store->ReadAllRecords(GlobalPosition(0), 1'000'000, [&](const Store::RecordRun& run) -> uint32_t {
    EXPECT_EQ(run.first.value, next);
    EXPECT_LE(run.first.value + run.count, f.position) << "nothing at or past the damage";
    next = run.first.value + run.count;
    return run.count;
  }, buffer);
  ExpectDamageAt(all.status(), f);
  EXPECT_EQ(next, f.position) << "$all stops at the damage, after every event before it";
  auto after = store->ReadAllRecords(GlobalPosition(f.position + 1), 1'000'000,
                                     [](const Store::RecordRun& run) { return run.count; }, buffer);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, 600 - f.position - 1);
}

TEST(StoreDamage, EverythingElseKeepsBeingServed) {
  TempDir dir;
  const Flipped f = FillAndFlip(dir, 1, 10);
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  ASSERT_FALSE(store->ReadStream(f.stream, StreamVersion(0), 1000).ok());
  // Events before the damage, and the segments after the damaged one.
  auto before = store->ReadAll(GlobalPosition(0), f.position);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->size(), f.position);
  // Everything after the damaged batch: in its own segment (verification goes on at the next
  // intact batch) and in the later ones.
  auto after = store->ReadAll(GlobalPosition(f.position + 1), 1'000'000);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->size(), 600 - f.position - 1);
  for (const std::string s : {"d-0", "d-1", "d-2", "d-3"}) {
    auto tail = store->ReadStream(s, StreamVersion(1000), 10, Direction::kBackward);
    ASSERT_TRUE(tail.ok()) << s << ": " << tail.status().ToString();
    EXPECT_EQ(tail->size(), 10u);
    if (s == f.stream) continue;
    // Every event of the other streams, including those in the damaged segment.
    auto whole = store->ReadStream(s, StreamVersion(0), 1000);
    ASSERT_TRUE(whole.ok()) << s << ": " << whole.status().ToString();
    EXPECT_EQ(whole->size(), 150u);
  }
  auto r = store->AppendSync("new", ExpectedVersion::NoStream(), MakeEvents("new", 0, 1));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST(StoreDamage, VerifiedReadsReturnTheBytesThatWereWritten) {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    for (int i = 0; i < 400; ++i) {
      const std::string s = "v-" + std::to_string(i % 3);
      ASSERT_TRUE(store->AppendSync(s, ExpectedVersion::Any(), MakeEvents(s, i / 3, 1, 7, 250)).ok());
    }
  }
  auto store = OpenStore(dir);
  for (int k = 0; k < 3; ++k) {
    const std::string s = "v-" + std::to_string(k);
    auto events = store->ReadStream(s, StreamVersion(0), 1000);
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    for (const auto& e : *events) EXPECT_EQ(e.data, testing::ExpectedData(s, e.version.value, 7, 250));
  }
  EXPECT_EQ(store->stats().corruption_found, 0u);
}


TEST(StoreDamage, AfterABatchWhoseHeaderIsDamagedTheNextIntactBatchIsFoundAndServed) {
  TempDir dir;
  const Flipped f = FillAndFlip(dir, 2, 20);
  testing::FlipByte(f.file, f.offset + 9);  // its size field too: it cannot be framed
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  ExpectDamageAt(store->ReadAll(GlobalPosition(0), 1'000'000).status(), f);
  auto after = store->ReadAll(GlobalPosition(f.position + 1), 1'000'000);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_FALSE(after->empty());
  EXPECT_EQ((*after)[0].position, GlobalPosition(f.position + 1));
  EXPECT_EQ(after->size(), 600 - f.position - 1);
  EXPECT_EQ(store->stats().corruption_found, 1u);
}

// ---- Disk use: zeros only a bounded step ahead of the writer (docs/storage.md) ----

// Disk blocks (st_blocks * 512) of every file under `dir`, as `du -s --block-size=1` counts.
uint64_t DiskBlocksUnder(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st;
    if (::lstat(f.path().c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return bytes;
}

TEST(Store, AnEmptyStoreTakesLessThan64MiBOnDisk) {
  TempDir dir;
  Options options;  // the defaults: 256 MiB segments
  ASSERT_EQ(options.segment_size, 256ull << 20);
  auto store = Store::Open(dir.path(), options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const StoreStats stats = (*store)->stats();
  EXPECT_EQ(stats.log_bytes, format::kSegmentHeaderSize) << "an empty log is one segment header";
  EXPECT_GE(stats.allocated_bytes, options.fill_ahead) << "the first step is zero-filled at open";
  EXPECT_LT(stats.allocated_bytes, 64ull << 20);
  EXPECT_LT(DiskBlocksUnder(dir.path()), 64ull << 20);
  for (const auto& f : std::filesystem::directory_iterator(dir.path() / "segments")) {
    EXPECT_NE(f.path().filename().string().rfind("spare-", 0), 0u) << "no spare before it is needed: " << f.path();
  }
}

TEST(Store, LogBytesCountTheLogWrittenNotThePreallocatedZeros) {
  TempDir dir;
  auto store = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->AppendSync("s", ExpectedVersion::Any(), MakeEvents("s", 0, 3)).ok());
  const StoreStats stats = (*store)->stats();
  EXPECT_EQ(stats.log_bytes, format::kSegmentHeaderSize + stats.bytes_written);
  EXPECT_GT(stats.allocated_bytes, stats.log_bytes) << "the zeros ahead of the writer take disk";
  store->reset();
  auto reopened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->stats().log_bytes, stats.log_bytes) << "the same count from the log after a restart";
}

TEST(Store, AnAppendLargerThanTheZeroFilledPartWaitsForItAndIsDurable) {
  TempDir dir;
  Options options;
  options.segment_size = 8 << 20;
  options.fill_ahead = 256 << 10;  // far less than the append below
  std::vector<EventData> events = MakeEvents("big", 0, 12);
  for (EventData& e : events) e.data.assign(100 << 10, 'x');  // ~1.2 MiB in one batch
  {
    auto store = Store::Open(dir.path(), options);
    ASSERT_TRUE(store.ok());
    auto r = (*store)->AppendSync("big", ExpectedVersion::NoStream(), events);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_GE((*store)->stats().fill_waits, 1u) << "the writer outran the filler and waited for it";
  }
  auto store = Store::Open(dir.path(), options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto read = (*store)->ReadStream("big", StreamVersion(0), 100, Direction::kForward);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), events.size());
  EXPECT_EQ((*read)[11].data, events[11].data);
  auto verified = VerifyStore(dir.path());
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok());
}

}  // namespace
}  // namespace esd::storage
