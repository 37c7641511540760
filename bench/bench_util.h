// What the storage benchmarks share: where their stores live, the 200-byte event they
// append, and a Loader that fills a store quickly (many appends in flight, so the writer
// groups them) and shows progress on stderr.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/store.h"

namespace esd::bench {

using storage::EventData;
using storage::Options;
using storage::Status;
using storage::Store;

// EventData.data of every benchmark event: 200 bytes; their content does not matter.
extern const std::string kPayload;

// $ESD_BENCH_DIR when set, else <build>/bench-data: on the disk being measured, never a
// tmpfs, where fdatasync would cost nothing.
std::filesystem::path BaseDir();
// A new, empty directory under BaseDir() named <prefix>-XXXXXX.
std::filesystem::path MakeRunDir(const std::string& prefix);

[[noreturn]] void Die(const std::string& what, const Status& s);
std::unique_ptr<Store> OpenOrDie(const std::filesystem::path& dir, const Options& options);

// `n` events of type BenchEvent with kPayload and fresh random ids.
std::vector<EventData> MakeBenchEvents(size_t n);

// Appends without waiting for each append: up to 64 stay queued. With `total_events` set,
// prints a progress line to stderr every 10% of it.
class Loader {
 public:
  explicit Loader(Store& store, uint64_t total_events = 0);
  void Add(std::string stream, size_t n);
  // Waits for every append; dies on the first failure.
  void Finish();

 private:
  static constexpr int kMaxInFlight = 64;
  Store& store_;
  const uint64_t total_;
  uint64_t next_report_;
  uint64_t acknowledged_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  Status error_;
};

}  // namespace esd::bench
