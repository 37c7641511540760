// Scavenge rate and reclaim (docs/storage.md, "Scavenge").
//
// BM_ScavengeHalfDeleted: a store of 64 MiB segments where deleted streams hold half the
// log's bytes (batches of 100 events of ~300 bytes, a kept and a deleted stream taking turns)
// is scavenged once. Reported: MB/s of segment read (bytes_read over the scavenge's wall
// time; the segments were just written, so mostly from the page cache, as on a store whose
// recent segments are warm), the share of the log's bytes the data directory shrank by (du:
// allocated blocks), and events removed. $ESD_BENCH_SCAVENGE_MB sets the log size (512).
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <functional>
#include <string>
#include <thread>

#include "bench_util.h"
#include "storage/store.h"

namespace {

using namespace esd::storage;
using namespace esd::bench;
namespace fs = std::filesystem;

class Ended : public EventListener {
 public:
  void OnScavengeFinished(const ScavengeStatus& s) override {
    std::lock_guard lock(mu_);
    status_ = s;
    cv_.notify_all();
  }
  ScavengeStatus Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return status_.has_value(); });
    return *status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ScavengeStatus> status_;
};

uint64_t DiskUse(const fs::path& dir) {
  uint64_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st;
    if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0) bytes += uint64_t(st.st_blocks) * 512;
  }
  return bytes;
}

void BM_ScavengeHalfDeleted(benchmark::State& state) {
  const char* mb = std::getenv("ESD_BENCH_SCAVENGE_MB");
  const uint64_t log_target = (mb != nullptr ? std::strtoull(mb, nullptr, 10) : 512) << 20;
  for (auto _ : state) {
    state.PauseTiming();
    const fs::path dir = MakeRunDir("scavenge");
    Ended ended;
    Options options;
    options.segment_size = 64u << 20;
    options.listener = &ended;
    options.scavenge_retire_after = std::chrono::milliseconds(0);
    options.durability = DurabilityMode{Durability::kNever, {}};  // filling is not what is measured
    auto store = OpenOrDie(dir, options);
    const std::vector<EventData> batch = MakeBenchEvents(100);
    int deleted = 0;
    for (uint64_t i = 0; store->stats().log_bytes < log_target; ++i) {
      for (const std::string& s : {std::string("kept-") + std::to_string(i % 16), "gone-" + std::to_string(i % 16)}) {
        std::vector<EventData> events = batch;
        for (auto& e : events) e.id = EventId::Random();
        if (!store->AppendSync(s, ExpectedVersion::Any(), std::move(events)).ok()) {
          state.SkipWithError("append failed");
          return;
        }
      }
    }
    for (int i = 0; i < 16; ++i) deleted += store->DeleteStreamSync("gone-" + std::to_string(i), ExpectedVersion::Any(), false).ok();
    if (deleted != 16) {
      state.SkipWithError("delete failed");
      return;
    }
    (void)store->Sync();
    const uint64_t log = store->stats().log_bytes;
    const uint64_t before = DiskUse(dir);
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    if (!store->StartScavenge().ok()) {
      state.SkipWithError("scavenge did not start");
      return;
    }
    const ScavengeStatus s = ended.Wait();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.PauseTiming();
    const uint64_t after = DiskUse(dir);
    state.counters["read_MBps"] = double(s.bytes_read) / 1e6 / seconds;
    state.counters["log_MB"] = double(log) / 1e6;
    state.counters["shrunk_pct_of_log"] = 100.0 * double(before > after ? before - after : 0) / double(log);
    state.counters["events_removed"] = double(s.events_removed);
    state.counters["segments_rewritten"] = double(s.segments_rewritten);
    if (s.state != ScavengeStatus::State::kFinished) state.SkipWithError(s.error.ToString().c_str());
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    state.ResumeTiming();
  }
}

BENCHMARK(BM_ScavengeHalfDeleted)->Iterations(1)->Unit(benchmark::kMillisecond);

// Appends while a scavenge runs: 64 appenders of 100 events each keep one durable append in
// flight for 3 s on a store holding a half-deleted log (as above); arg 0 without a scavenge,
// arg 1 with one started at the beginning (it rewrites while they append). Compare the two
// events_per_s: the issue asks for at least 80% of the rate without.
void BM_AppendsDuringScavenge(benchmark::State& state) {
  const bool scavenging = state.range(0) == 1;
  const char* mb = std::getenv("ESD_BENCH_SCAVENGE_MB");
  const uint64_t log_target = (mb != nullptr ? std::strtoull(mb, nullptr, 10) : 512) << 20;
  for (auto _ : state) {
    const fs::path dir = MakeRunDir("scavenge-appends");
    Ended ended;
    Options options;
    options.segment_size = 64u << 20;
    options.listener = &ended;
    options.scavenge_retire_after = std::chrono::milliseconds(0);
    {
      Options filling = options;
      filling.durability = DurabilityMode{Durability::kNever, {}};
      auto store = OpenOrDie(dir, filling);
      const std::vector<EventData> batch = MakeBenchEvents(100);
      for (uint64_t i = 0; store->stats().log_bytes < log_target; ++i) {
        for (const std::string& s : {std::string("kept-") + std::to_string(i % 16), "gone-" + std::to_string(i % 16)}) {
          std::vector<EventData> events = batch;
          for (auto& e : events) e.id = EventId::Random();
          (void)store->AppendSync(s, ExpectedVersion::Any(), std::move(events));
        }
      }
      for (int i = 0; i < 16; ++i) (void)store->DeleteStreamSync("gone-" + std::to_string(i), ExpectedVersion::Any(), false);
    }
    auto store = OpenOrDie(dir, options);
    std::atomic<uint64_t> events{0};
    std::atomic<bool> stop{false};
    std::atomic<int> running{64};
    std::mutex mu;
    std::condition_variable cv;
    const std::vector<EventData> batch = MakeBenchEvents(100);
    std::function<void(int)> submit = [&](int i) {
      std::vector<EventData> copy = batch;
      for (auto& e : copy) e.id = EventId::Random();
      store->Append("load-" + std::to_string(i), ExpectedVersion::Any(), std::move(copy), [&, i](AppendResult r) {
        if (r.ok()) events += 100;
        if (stop.load() || !r.ok()) {
          std::lock_guard lock(mu);
          if (--running == 0) cv.notify_all();
          return;
        }
        submit(i);
      });
    };
    if (scavenging && !store->StartScavenge().ok()) state.SkipWithError("scavenge did not start");
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 64; ++i) submit(i);
    std::this_thread::sleep_for(std::chrono::seconds(3));  // the measurement window
    stop = true;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return running == 0; });
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.counters["events_per_s"] = double(events.load()) / seconds;
    if (scavenging) {
      const ScavengeStatus s = store->GetScavengeStatus();
      state.counters["scavenge_read_MB"] = double(s.bytes_read) / 1e6;
      state.counters["scavenge_done"] = s.state == ScavengeStatus::State::kFinished ? 1 : 0;
      store->StopScavenge();
    }
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

BENCHMARK(BM_AppendsDuringScavenge)->ArgName("scavenging")->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
