// Listing streams a page at a time (Store::ListStreams: the listStreams RPC and `esctl
// streams`) and counting them (Store::StreamCount: Admin.status and `esctl status`), on
// stores of 10,000 and 1,000,000 streams; and how long appends wait while another thread
// lists every stream, page after page, as a client paging through `esctl streams` would.
//
// BM_Page: one page of 1000 names after a random name. It must not grow with the store.
// BM_FirstPageAfterOpen: the first page after the store is (re)opened, which also reads and
//   sorts the newest index file's names (once per open).
// BM_StreamCount: the count, once the directory is built.
// BM_AppendWhileListing: appends of one event, one at a time (AppendSync), for a few
//   seconds, with (listing:1) or without (listing:0) another thread paging through every
//   stream meanwhile. Durability::kNever, so what an append waits for is the writer and its
//   lock, not fdatasync. Reports the appends done and their latency (p50, p99, max).
//
// Each store holds one event per stream, built once per process (lazily) with
// Durability::kNever and reopened, so that most names come from index files as after a
// restart (10k: 2 MiB segments, 1M: 64 MiB segments); removed at exit. Directory:
// $ESD_BENCH_DIR, else <build>/bench-data.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "storage/store.h"

namespace {

using namespace esd::storage;
using namespace esd::bench;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kPage = 1000;

// The call the listStreams RPC makes for one page.
StreamListPage ListPage(const Store& store, std::string_view after, size_t limit) {
  return store.ListStreams("", after, limit);
}

// Stream i's name. Names are not created in name order (an odd multiplier permutes 2^32).
std::string StreamName(uint64_t i) {
  char name[32];
  std::snprintf(name, sizeof name, "stream-%08x", static_cast<uint32_t>(i * 2654435761u));
  return name;
}

Options StoreOptions(uint64_t streams) {
  Options o;
  o.segment_size = streams <= 10'000 ? 2ull << 20 : 64ull << 20;
  o.durability = DurabilityMode{Durability::kNever};
  return o;
}

struct Fixture {  // a store and its directory, removed together
  uint64_t streams = 0;
  fs::path dir;
  std::unique_ptr<Store> store;
  void Reopen() {
    store.reset();
    store = OpenOrDie(dir, StoreOptions(streams));
  }
  ~Fixture() {
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::map<uint64_t, std::unique_ptr<Fixture>> g_stores;  // closed and removed at exit

Fixture& StoreOf(uint64_t streams) {
  auto& f = g_stores[streams];
  if (f) return *f;
  f = std::make_unique<Fixture>();
  f->streams = streams;
  f->dir = MakeRunDir("streams-" + std::to_string(streams));
  const auto t0 = Clock::now();
  {
    auto store = OpenOrDie(f->dir, StoreOptions(streams));
    Loader loader(*store, streams);
    for (uint64_t i = 0; i < streams; ++i) loader.Add(StreamName(i), 1);
    loader.Finish();
  }
  f->Reopen();
  std::fprintf(stderr, "%llu streams, %llu segments, built in %.1f s\n", static_cast<unsigned long long>(streams),
               static_cast<unsigned long long>(f->store->recovery().segments),
               std::chrono::duration<double>(Clock::now() - t0).count());
  if (f->store->StreamCount() != streams) Die("StreamCount", Status::Corruption("not every stream is there"));
  return *f;
}

void BM_FirstPageAfterOpen(benchmark::State& state) {
  Fixture& f = StoreOf(static_cast<uint64_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    f.Reopen();
    state.ResumeTiming();
    const auto page = ListPage(*f.store, "", kPage);
    if (page.streams.size() != kPage) {
      state.SkipWithError("the first page is not full");
      break;
    }
  }
}

BENCHMARK(BM_FirstPageAfterOpen)->ArgName("streams")->Arg(10'000)->Arg(1'000'000)->Iterations(3)->Unit(benchmark::kMillisecond);

void BM_Page(benchmark::State& state) {
  const auto streams = static_cast<uint64_t>(state.range(0));
  const Store& store = *StoreOf(streams).store;
  (void)ListPage(store, "", kPage);  // the first page after open builds the directory: not this case
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> pick(0, streams - 1);
  uint64_t listed = 0;
  for (auto _ : state) {
    const auto page = ListPage(store, StreamName(pick(rng)), kPage);
    listed += page.streams.size();
    benchmark::DoNotOptimize(page);
  }
  state.counters["streams/page"] = benchmark::Counter(static_cast<double>(listed), benchmark::Counter::kAvgIterations);
}

BENCHMARK(BM_Page)->ArgName("streams")->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

void BM_StreamCount(benchmark::State& state) {
  const auto streams = static_cast<uint64_t>(state.range(0));
  const Store& store = *StoreOf(streams).store;
  if (store.StreamCount() != streams) {
    state.SkipWithError("StreamCount is not the number of streams");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(store.StreamCount());
}

BENCHMARK(BM_StreamCount)->ArgName("streams")->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

void BM_AppendWhileListing(benchmark::State& state) {
  const auto streams = static_cast<uint64_t>(state.range(0));
  const bool listing = state.range(1) != 0;
  Store& store = *StoreOf(streams).store;
  (void)ListPage(store, "", kPage);  // built before the clock starts, as in BM_Page
  constexpr auto kRun = std::chrono::seconds(3);
  std::vector<double> micros;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> pages{0};
  for (auto _ : state) {
    std::thread lister;
    if (listing) {
      lister = std::thread([&] {
        std::string after;
        while (!stop.load(std::memory_order_relaxed)) {
          const auto page = ListPage(store, after, kPage);
          ++pages;
          after = page.more && !page.streams.empty() ? page.streams.back().first : "";
        }
      });
    }
    // A stream of its own, sorting after every other: the appends never change what is listed.
    const auto until = Clock::now() + kRun;
    while (Clock::now() < until) {
      const auto t0 = Clock::now();
      auto r = store.AppendSync("~probe", ExpectedVersion::Any(), MakeBenchEvents(1));
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (!r.ok()) Die("AppendSync", r.status());
    }
    stop = true;
    if (lister.joinable()) lister.join();
  }
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros.empty() ? 0.0 : micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  state.counters["appends"] = static_cast<double>(micros.size());
  state.counters["p50_us"] = at(0.5);
  state.counters["p99_us"] = at(0.99);
  state.counters["max_us"] = at(1.0);
  state.counters["pages_listed"] = static_cast<double>(pages.load());
}

BENCHMARK(BM_AppendWhileListing)
    ->ArgNames({"streams", "listing"})
    ->Args({1'000'000, 0})
    ->Args({1'000'000, 1})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
