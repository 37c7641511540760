// Read throughput of esd::storage::Store from the page cache.
//
// BM_ReadAll scans $all: a store of 1,000,000 events of 200 bytes (100-event batches over
// 1,000 streams), read `count` events per iteration from a random start, so the reads are
// not always served by the same, already-hot part of the log.
//
// BM_ReadAllFirstTime scans all of $all right after the store is (re)opened: every batch of
// the sealed segment is verified (checksummed) as the read first reaches it, which is the
// cost of "nothing unverified leaves the store"; BM_ReadAll, on a store whose batches were
// verified by earlier reads, is the cost from then on.
//
// BM_ReadStream reads the one 1,000-event stream "target" out of a store of 1,000,000
// events. Its events are one per append, 999 other events apart, so they are spread over
// the whole log; with 32 MiB segments that is ~10 segments, most of them sealed, so the
// read goes through the sealed segments' index files as well as the active tail.
//
// Both stores are built once per process (lazily, on first use) with Durability::kNever:
// setup speed only, the reads are the same. Each is then closed and reopened the way a
// daemon would open it, and removed at exit. Directory: $ESD_BENCH_DIR, else
// <build>/bench-data.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "storage/store.h"

namespace {

using namespace esd::storage;
using namespace esd::bench;
namespace fs = std::filesystem;

constexpr uint64_t kStoreEvents = 1'000'000;
constexpr uint64_t kTargetEvents = 1'000;
constexpr uint64_t kSmallSegment = 32ull << 20;

struct Fixture {  // a store and its directory, removed together
  fs::path dir;
  std::unique_ptr<Store> store;
  ~Fixture() {
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// Creates a fresh directory, loads it with `load`, closes it and reopens it durably.
std::unique_ptr<Fixture> Build(const char* name, uint64_t segment_size, void (*load)(Loader&)) {
  auto f = std::make_unique<Fixture>();
  f->dir = MakeRunDir(name);
  const auto t0 = std::chrono::steady_clock::now();
  {
    Options fast;
    fast.segment_size = segment_size;
    fast.durability = DurabilityMode{Durability::kNever};
    auto store = OpenOrDie(f->dir, fast);
    Loader loader(*store);
    load(loader);
    loader.Finish();
  }
  Options options;
  options.segment_size = segment_size;
  f->store = OpenOrDie(f->dir, options);
  std::fprintf(stderr, "%s: %llu events, %llu segments, built in %.1f s\n", name,
               static_cast<unsigned long long>(f->store->DurablePosition().value),
               static_cast<unsigned long long>(f->store->recovery().segments),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (f->store->DurablePosition().value != kStoreEvents) {
    Die(name, Status::Corruption("not every loaded event is there after reopening"));
  }
  return f;
}

std::unique_ptr<Fixture> g_all, g_target;  // for BM_ReadAll, BM_ReadStream

// 1,000 streams of 1,000 events, 100 per append, round robin; default 256 MiB segments.
void LoadAll(Loader& loader) {
  for (uint64_t i = 0; i < kStoreEvents / 100; ++i) {
    loader.Add("all-" + std::to_string(i % 1000), 100);
  }
}

// Per round: one "target" event, then 999 others (9 appends of 100, one of 99).
void LoadTarget(Loader& loader) {
  uint64_t filler = 0;
  for (uint64_t round = 0; round < kTargetEvents; ++round) {
    loader.Add("target", 1);
    for (int b = 0; b < 10; ++b) {
      loader.Add("filler-" + std::to_string(filler++ % 1000), b < 9 ? 100 : 99);
    }
  }
}

Store& AllStore() {
  if (!g_all) g_all = Build("read-all", Options{}.segment_size, LoadAll);
  return *g_all->store;
}
Store& TargetStore() {
  if (!g_target) g_target = Build("read-stream", kSmallSegment, LoadTarget);
  return *g_target->store;
}

void BM_ReadAll(benchmark::State& state) {
  const Store& store = AllStore();
  const auto count = static_cast<uint64_t>(state.range(0));
  const uint64_t end = store.DurablePosition().value;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> pick(0, end - count);
  uint64_t events = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    const uint64_t start = pick(rng);
    uint64_t expected = start;
    bool in_order = true;
    // The visitor touches every event (position check, payload size) as a consumer would.
    auto visited = store.ReadAll(GlobalPosition(start), count, [&](const EventView& e) {
      in_order &= e.position.value == expected++;
      bytes += e.data.size();
      return true;
    });
    if (!visited.ok() || *visited != count || !in_order) {
      state.SkipWithError(!visited.ok() ? visited.status().ToString().c_str()
                                        : "ReadAll returned the wrong events");
      break;
    }
    events += count;
  }
  benchmark::DoNotOptimize(bytes);
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

BENCHMARK(BM_ReadAll)->ArgName("count")->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);

void BM_ReadAllFirstTime(benchmark::State& state) {
  AllStore();
  uint64_t events = 0, sealed_bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    g_all->store.reset();  // a new Store: nothing is verified but what recovery scanned
    Options options;
    g_all->store = OpenOrDie(g_all->dir, options);
    state.ResumeTiming();
    uint64_t expected = 0;
    bool in_order = true;
    auto visited = g_all->store->ReadAll(GlobalPosition(0), kStoreEvents, [&](const EventView& e) {
      in_order &= e.position.value == expected++;
      return true;
    });
    if (!visited.ok() || *visited != kStoreEvents || !in_order) {
      state.SkipWithError(!visited.ok() ? visited.status().ToString().c_str() : "ReadAll returned the wrong events");
      break;
    }
    events += kStoreEvents;
    sealed_bytes = g_all->store->recovery().segments > 1 ? Options{}.segment_size : 0;
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.counters["sealed_MiB"] = static_cast<double>(sealed_bytes >> 20);
}

BENCHMARK(BM_ReadAllFirstTime)->Unit(benchmark::kMillisecond)->Iterations(5);

// Checks once, outside the timing, that the stream comes back whole and in order.
bool TargetIsIntact(const std::vector<EventView>& events, Direction direction) {
  if (events.size() != kTargetEvents) return false;
  for (size_t i = 0; i < events.size(); ++i) {
    const uint64_t want = direction == Direction::kForward ? i : kTargetEvents - 1 - i;
    if (events[i].version.value != want || events[i].stream != "target") return false;
  }
  return events.front().position < events.back().position ? direction == Direction::kForward
                                                          : direction == Direction::kBackward;
}

void BM_ReadStream(benchmark::State& state) {
  const Store& store = TargetStore();
  const auto direction = state.range(0) == 0 ? Direction::kForward : Direction::kBackward;
  const StreamVersion from(direction == Direction::kForward ? 0 : kTargetEvents - 1);
  auto first = store.ReadStream("target", from, kTargetEvents, direction);
  if (!first.ok() || !TargetIsIntact(*first, direction)) {
    state.SkipWithError(!first.ok() ? first.status().ToString().c_str()
                                    : "ReadStream returned the wrong events");
    return;
  }
  state.counters["first_pos"] = static_cast<double>(first->front().position.value);
  state.counters["last_pos"] = static_cast<double>(first->back().position.value);
  for (auto _ : state) {
    auto events = store.ReadStream("target", from, kTargetEvents, direction);
    if (!events.ok() || events->size() != kTargetEvents) {
      state.SkipWithError("ReadStream failed or came back short");
      break;
    }
    benchmark::DoNotOptimize(events->data());
  }
  const auto n = static_cast<double>(state.iterations() * kTargetEvents);
  state.counters["events/s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(n * kPayload.size()));
}

BENCHMARK(BM_ReadStream)->ArgName("backward")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_all.reset();
  g_target.reset();
  return 0;
}
