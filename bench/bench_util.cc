#include "bench_util.h"

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace esd::bench {

const std::string kPayload(200, 'x');

std::filesystem::path BaseDir() {
  if (const char* env = std::getenv("ESD_BENCH_DIR"); env != nullptr && *env != '\0') return env;
  return ESD_BENCH_DEFAULT_DIR;
}

std::filesystem::path MakeRunDir(const std::string& prefix) {
  std::filesystem::create_directories(BaseDir());
  std::string tmpl = (BaseDir() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  return tmpl;
}

void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::abort();
}

std::unique_ptr<Store> OpenOrDie(const std::filesystem::path& dir, const Options& options) {
  auto store = Store::Open(dir, options);
  if (!store.ok()) Die("Store::Open " + dir.string(), store.status());
  return std::move(store).value();
}

std::vector<EventData> MakeBenchEvents(size_t n) {
  std::vector<EventData> events(n);
  for (auto& e : events) {
    e.id = storage::EventId::Random();
    e.type = "BenchEvent";
    e.data = kPayload;
  }
  return events;
}

Loader::Loader(Store& store, uint64_t total_events)
    : store_(store), total_(total_events), next_report_(total_events / 10) {}

void Loader::Add(std::string stream, size_t n) {
  std::vector<EventData> events = MakeBenchEvents(n);
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ < kMaxInFlight; });
    if (!error_.ok()) Die("Append while loading", error_);
    ++in_flight_;
    while (total_ > 0 && acknowledged_ >= next_report_) {
      std::fprintf(stderr, "  %3llu%%  %llu events  %.1f s\n",
                   static_cast<unsigned long long>(next_report_ * 100 / total_),
                   static_cast<unsigned long long>(acknowledged_),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
      next_report_ += total_ / 10;
    }
  }
  store_.Append(std::move(stream), storage::ExpectedVersion::Any(), std::move(events),
                [this, n](storage::AppendResult r) {
                  std::lock_guard lock(mu_);
                  if (r.ok()) {
                    acknowledged_ += n;
                  } else if (error_.ok()) {
                    error_ = r.status();
                  }
                  --in_flight_;
                  cv_.notify_all();
                });
}

void Loader::Finish() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return in_flight_ == 0; });
  if (!error_.ok()) Die("Append while loading", error_);
}

}  // namespace esd::bench
