// Durable append throughput and latency of esd::storage::Store.
//
// Each benchmark thread is one appender: it calls AppendSync in a loop on its own stream,
// so N threads = N concurrent appenders sharing one store, and the writer thread's group
// commit is what turns many appenders into few fdatasyncs. Durability is the default
// (kAlways): an append returns only after the fdatasync that covers it.
//
// The store lives in a fresh directory under $ESD_BENCH_DIR (default: <build>/bench-data)
// and is removed after every run. It is opened by Setup() and closed by Teardown(), which
// Google Benchmark runs once per run on the main thread, before any benchmark thread starts
// and after all of them ended, so no thread can see a half-opened store.
//
// Reported per run: events/s (all appenders together, over wall time), MB/s of event
// payload, per-append latency (mean, p50, p99 over every append of every thread) and how
// many appends each fdatasync carried. With several threads the "Time" column is wall time
// divided by the appends of all threads, i.e. an inverse throughput, not a latency.
//
// BM_Fdatasync is the baseline: pwrite + fdatasync on a zero-filled file (as the store's
// segments are), without the store, to tell the disk's cost from the store's.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "storage/store.h"

namespace {

using namespace esd::storage;
using namespace esd::bench;
namespace fs = std::filesystem;

// Shared by the threads of one run. Setup/Teardown (main thread) bracket the threads.
std::unique_ptr<Store> g_store;
fs::path g_dir;
// Every thread hands its latencies over after its loop; thread 0 waits for all of them.
std::mutex g_mu;
std::condition_variable g_cv;
std::vector<double> g_latencies_us;
uint64_t g_events_acknowledged = 0;
int g_threads_done = 0;

void OpenStore(const benchmark::State&) {
  g_dir = MakeRunDir("append");
  Options options;  // 256 MiB segments, Durability::kAlways
  // $ESD_BENCH_RECYCLED=1: every segment is zero-filled in full before the writer gets there,
  // as a spare recycled by scavenge is (docs/storage.md, "Segment recycling"): the writer
  // only overwrites, and no filler runs beside it. Set ESD_BENCH_SETTLE_MS to cover the
  // first segment's 256 MiB of zeros.
  if (const char* r = std::getenv("ESD_BENCH_RECYCLED"); r != nullptr && std::string(r) == "1") {
    options.fill_ahead = options.segment_size;
  }
  g_store = OpenOrDie(g_dir, options);
  // Every Open zero-fills a 256 MiB spare segment in the background; while that runs, an
  // fdatasync costs several times more. Wait for it: a run measures the steady state, in
  // which the spare made by a segment roll during the run still counts, but not the extra
  // one of a restart. $ESD_BENCH_SETTLE_MS overrides the wait (ms).
  const char* settle = std::getenv("ESD_BENCH_SETTLE_MS");
  std::this_thread::sleep_for(std::chrono::milliseconds(settle ? std::atol(settle) : 1000));
  g_latencies_us.clear();
  g_events_acknowledged = 0;
  g_threads_done = 0;
}

void CloseStore(const benchmark::State&) {
  g_store.reset();  // finishes queued appends, releases the directory lock
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

void BM_DurableAppend(benchmark::State& state) {
  const auto per_append = static_cast<size_t>(state.range(0));
  // One stream per appender: no expected-version conflicts, every append is accepted.
  const std::string stream = "bench-" + std::to_string(state.thread_index()) + "-" +
                             std::to_string(per_append);
  std::vector<double> latencies_us;
  latencies_us.reserve(1 << 14);
  uint64_t events = 0;

  for (auto _ : state) {
    // Building the batch is part of an appender's work, but not of the append latency.
    std::vector<EventData> batch = MakeBenchEvents(per_append);
    const auto t0 = std::chrono::steady_clock::now();
    AppendResult r = g_store->AppendSync(stream, ExpectedVersion::Any(), std::move(batch));
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (!r.ok()) {
      state.SkipWithError(("AppendSync: " + r.status().ToString()).c_str());
      break;
    }
    if (r->last_version - r->first_version + 1 != per_append) {
      state.SkipWithError("AppendSync acknowledged a different number of events");
      break;
    }
    events += per_append;
  }

  // Rates are summed over threads and divided by the run's wall time (UseRealTime).
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events),
                                                  benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(events * kPayload.size()));

  std::unique_lock lock(g_mu);
  g_latencies_us.insert(g_latencies_us.end(), latencies_us.begin(), latencies_us.end());
  g_events_acknowledged += events;
  ++g_threads_done;
  g_cv.notify_all();
  if (state.thread_index() != 0) return;
  // Only thread 0 reports the run-wide figures (counters of all threads are summed).
  g_cv.wait(lock, [&] { return g_threads_done == state.threads(); });
  std::vector<double>& lat = g_latencies_us;
  std::sort(lat.begin(), lat.end());
  const double mean = lat.empty() ? 0 : std::accumulate(lat.begin(), lat.end(), 0.0) / lat.size();
  state.counters["lat_mean_us"] = mean;
  state.counters["lat_p50_us"] = Percentile(lat, 0.50);
  state.counters["lat_p99_us"] = Percentile(lat, 0.99);
  // The store was fresh for this run: its contents and stats are this run's alone.
  if (g_store->DurablePosition().value != g_events_acknowledged) {
    state.SkipWithError("the store does not hold exactly the acknowledged events");
  }
  const StoreStats st = g_store->stats();
  state.counters["fsyncs/s"] = benchmark::Counter(static_cast<double>(st.fsyncs),
                                                  benchmark::Counter::kIsRate);
  state.counters["appends/fsync"] = st.fsyncs == 0 ? 0.0 : double(st.appends) / st.fsyncs;
}

BENCHMARK(BM_DurableAppend)
    ->ArgName("events_per_append")
    ->Arg(1)
    ->Arg(10)
    ->Arg(100)
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0)
    ->Setup(OpenStore)
    ->Teardown(CloseStore);

// K appenders without K threads: each keeps one append in flight and submits its next one
// from the previous one's callback. This is the shape the daemon has (one RPC thread, many
// clients, callbacks), and it measures the store rather than the kernel's scheduling of 64
// blocked threads on 2 cores.
struct InFlightRun {
  std::vector<double> latencies_us;  // sorted
  uint64_t events = 0;
  double seconds = 0;
  bool failed = false;
};

// Runs until `done(events so far)` says so, checked by the caller's thread every 10 ms.
InFlightRun RunInFlight(size_t per_append, int appenders, const std::function<bool(uint64_t)>& done) {
  using Clock = std::chrono::steady_clock;
  struct Chain {
    std::string stream;
    Clock::time_point t0;
    std::vector<double> latencies_us;  // touched by one callback at a time
  };
  std::vector<Chain> chains(appenders);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> events{0};
  std::atomic<int> running{appenders};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::condition_variable cv;
  std::function<void(int)> submit = [&](int i) {
    std::vector<EventData> batch = MakeBenchEvents(per_append);
    chains[i].t0 = Clock::now();
    g_store->Append(chains[i].stream, ExpectedVersion::Any(), std::move(batch), [&, i](AppendResult r) {
      Chain& c = chains[i];
      c.latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - c.t0).count());
      if (!r.ok()) failed = true;
      events += per_append;
      if (stop.load() || failed.load()) {
        std::lock_guard lock(mu);
        if (--running == 0) cv.notify_all();
        return;
      }
      submit(i);
    });
  };
  const auto start = Clock::now();
  for (int i = 0; i < appenders; ++i) {
    chains[i].stream = "inflight-" + std::to_string(i) + "-" + std::to_string(per_append);
    submit(i);
  }
  while (!done(events.load()) && !failed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return running == 0; });
  }
  InFlightRun run;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  run.events = events.load();
  run.failed = failed.load();
  for (auto& c : chains) run.latencies_us.insert(run.latencies_us.end(), c.latencies_us.begin(), c.latencies_us.end());
  std::sort(run.latencies_us.begin(), run.latencies_us.end());
  return run;
}

void ReportInFlight(benchmark::State& state, const InFlightRun& run) {
  if (run.failed) state.SkipWithError("an append failed");
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(run.events), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(run.events * kPayload.size()));
  state.counters["lat_p50_us"] = Percentile(run.latencies_us, 0.50);
  state.counters["lat_p99_us"] = Percentile(run.latencies_us, 0.99);
  state.counters["lat_p999_us"] = Percentile(run.latencies_us, 0.999);
  state.counters["lat_max_us"] = run.latencies_us.empty() ? 0.0 : run.latencies_us.back();
  const StoreStats st = g_store->stats();
  state.counters["appends/fsync"] = st.fsyncs == 0 ? 0.0 : double(st.appends) / st.fsyncs;
  // fdatasyncs slower than 50 ms: the disk's share of the worst latencies.
  uint64_t slow = 0;
  for (size_t b = 0; b < st.fsync_micros.counts.size(); ++b) {
    if (b == st.fsync_micros.upper_bounds.size() || st.fsync_micros.upper_bounds[b] > 50'000) slow += st.fsync_micros.counts[b];
  }
  state.counters["fsyncs_over_50ms"] = static_cast<double>(slow);
  if (g_store->DurablePosition().value != run.events) {
    state.SkipWithError("the store does not hold exactly the acknowledged events");
  }
}

// One iteration runs for a fixed wall time (2 s).
void BM_DurableAppendInFlight(benchmark::State& state) {
  const auto per_append = static_cast<size_t>(state.range(0));
  const auto appenders = static_cast<int>(state.range(1));
  InFlightRun run;
  for (auto _ : state) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);  // the measurement window
    run = RunInFlight(per_append, appenders, [&](uint64_t) { return std::chrono::steady_clock::now() >= until; });
    state.SetIterationTime(run.seconds);
  }
  ReportInFlight(state, run);
}

BENCHMARK(BM_DurableAppendInFlight)
    ->ArgNames({"events_per_append", "in_flight"})
    ->ArgsProduct({{1, 10, 100}, {1, 16, 64}})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->Setup(OpenStore)
    ->Teardown(CloseStore);

// 2.5 M single-event appends, 64 in flight: the writer's window of recent event ids (for
// idempotent retries, two generations of 2^20 batches) turns over twice. lat_max_us shows
// whether a turnover stalls the appends in flight (issue 10: it freed 2^20 nodes inline).
void BM_AppendsAcrossTheIdWindowTurnover(benchmark::State& state) {
  InFlightRun run;
  for (auto _ : state) {
    // $ESD_BENCH_APPENDS overrides the count (below 2^20: no turnover, for comparison).
    const char* n = std::getenv("ESD_BENCH_APPENDS");
    const uint64_t appends = n != nullptr ? std::strtoull(n, nullptr, 10) : 2'500'000;
    run = RunInFlight(1, 64, [appends](uint64_t events) { return events >= appends; });
    state.SetIterationTime(run.seconds);
  }
  ReportInFlight(state, run);
}

BENCHMARK(BM_AppendsAcrossTheIdWindowTurnover)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->Setup(OpenStore)
    ->Teardown(CloseStore);

// Baseline: what one sequential pwrite + fdatasync costs on this disk, into a file whose
// bytes were written (zeros) beforehand, so that fdatasync flushes data, not metadata.
void BM_Fdatasync(benchmark::State& state) {
  const auto write_size = static_cast<size_t>(state.range(0));
  constexpr size_t kFileSize = 64u << 20;
  const fs::path dir = MakeRunDir("fdatasync");
  const int fd = ::open((dir / "file").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.SkipWithError("open failed");
    return;
  }
  const std::vector<char> zeros(1u << 20, 0);
  for (size_t off = 0; off < kFileSize; off += zeros.size()) {
    if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) < 0) std::abort();
  }
  if (::fsync(fd) != 0) std::abort();

  const std::vector<char> buf(write_size, 'x');
  size_t offset = 0;
  for (auto _ : state) {
    if (offset + write_size > kFileSize) offset = 0;
    if (::pwrite(fd, buf.data(), write_size, static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(write_size) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("pwrite/fdatasync failed");
      break;
    }
    offset += write_size;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * write_size));
  ::close(fd);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

BENCHMARK(BM_Fdatasync)
    ->ArgName("bytes")
    ->Arg(512)
    ->Arg(4096)
    ->Arg(65536)
    ->Arg(1 << 20)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
