// Time to open (recover) and close a store of 10,000,000 events of 200 bytes (~3 GB).
//
// Open is what a daemon restart waits for: it finds the segments, checks the active
// segment's tail and loads the sealed segments' index files (rebuilding any that are
// missing). Destruction is included because a restart pays for it too.
//
// Building the store takes minutes, so it is kept between runs in
// $ESD_BENCH_DIR/open-10m (default <build>/bench-data/open-10m) and reused when it opens
// with exactly 10,000,000 events; anything else is removed and rebuilt. It is built with
// Durability::kNever and 100-event appends over 10,000 streams. Delete the directory to
// reclaim the space.
//
// The figures are warm-cache figures: the benchmark does not drop the page cache (that
// would need root and disturb everything else on the machine).
#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bench_util.h"
#include "storage/store.h"

namespace {

using namespace esd::storage;
using namespace esd::bench;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kEvents = 10'000'000;
constexpr uint64_t kPerAppend = 100;
constexpr uint64_t kStreams = 10'000;

fs::path StoreDir() {
  return BaseDir() / "open-10m";
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// True when `dir` holds a store that opens with exactly kEvents events.
bool CachedStoreIsUsable(const fs::path& dir) {
  if (!fs::exists(dir)) return false;
  auto store = Store::Open(dir, Options{});
  if (!store.ok()) {
    std::fprintf(stderr, "cached store %s does not open (%s): rebuilding\n", dir.c_str(),
                 store.status().ToString().c_str());
    return false;
  }
  const uint64_t n = store.value()->DurablePosition().value;
  if (n != kEvents) {
    std::fprintf(stderr, "cached store %s has %llu events, not %llu: rebuilding\n", dir.c_str(),
                 static_cast<unsigned long long>(n), static_cast<unsigned long long>(kEvents));
    return false;
  }
  return true;
}

// Appends kEvents events, keeping up to kMaxInFlight appends queued so that the writer
// groups them; prints a line to stderr every 10%.
void BuildStore(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  Options options;
  options.durability = DurabilityMode{Durability::kNever};
  auto opened = Store::Open(dir, options);
  if (!opened.ok()) Die("Store::Open " + dir.string(), opened.status());
  Store& store = *opened.value();

  std::fprintf(stderr, "building %s: %llu events ...\n", dir.c_str(), static_cast<unsigned long long>(kEvents));
  const auto t0 = Clock::now();
  Loader loader(store, kEvents);
  for (uint64_t i = 0; i < kEvents / kPerAppend; ++i) loader.Add("stream-" + std::to_string(i % kStreams), kPerAppend);
  loader.Finish();
  opened.value().reset();  // close: the writer finishes and the last segment is written
  std::fprintf(stderr, "  100%%  %llu events  %.1f s (including close)\n",
               static_cast<unsigned long long>(kEvents), Seconds(t0));
}

void BM_OpenStore(benchmark::State& state) {
  const fs::path dir = StoreDir();
  double open_s = 0;
  double close_s = 0;
  RecoveryReport report;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    auto store = Store::Open(dir, Options{});
    const auto t1 = Clock::now();
    if (!store.ok()) {
      state.SkipWithError(("Store::Open: " + store.status().ToString()).c_str());
      break;
    }
    if (store.value()->DurablePosition().value != kEvents) {
      state.SkipWithError("the store opened with the wrong number of events");
      break;
    }
    report = store.value()->recovery();
    store.value().reset();  // destruction is part of what is measured
    open_s += std::chrono::duration<double>(t1 - t0).count();
    close_s += Seconds(t1);
  }
  // Split of the measured time, averaged over iterations, in ms.
  using benchmark::Counter;
  state.counters["open_ms"] = Counter(open_s * 1e3, Counter::kAvgIterations);
  state.counters["close_ms"] = Counter(close_s * 1e3, Counter::kAvgIterations);
  state.counters["segments"] = static_cast<double>(report.segments);
  state.counters["tail_MB_scanned"] = static_cast<double>(report.tail_bytes_scanned) / 1e6;
  state.counters["idx_rebuilt"] = static_cast<double>(report.index_files_rebuilt);
  state.counters["events"] = static_cast<double>(report.end_position.value);
}

BENCHMARK(BM_OpenStore)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Build or validate before any timing. The validating open also reads the store once,
  // so every timed open finds it in the page cache, as the header comment says.
  const fs::path dir = StoreDir();
  if (!CachedStoreIsUsable(dir)) BuildStore(dir);
  if (!CachedStoreIsUsable(dir)) {
    std::fprintf(stderr, "the freshly built store does not hold %llu events\n",
                 static_cast<unsigned long long>(kEvents));
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
