// A histogram of fixed buckets, recorded with relaxed atomics (cheap enough for the writer's
// hot path) and read as a consistent-enough snapshot for metrics. Buckets are given by their
// inclusive upper bounds; values above the last land in an overflow bucket.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

namespace esd::storage {

class Histogram {
 public:
  struct Snapshot {
    std::vector<uint64_t> upper_bounds;
    std::vector<uint64_t> counts;  // per bucket (not cumulative); one more than upper_bounds
    uint64_t sum = 0;
    uint64_t count = 0;
  };

  explicit Histogram(std::initializer_list<uint64_t> upper_bounds)
      : bounds_(upper_bounds), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
    for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
  }

  void Record(uint64_t value) {
    size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }

  Snapshot Read() const {
    Snapshot s;
    s.upper_bounds = bounds_;
    for (size_t i = 0; i <= bounds_.size(); ++i) s.counts.push_back(counts_[i].load(std::memory_order_relaxed));
    s.sum = sum_.load(std::memory_order_relaxed);
    s.count = count_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  const std::vector<uint64_t> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> count_{0};
};

}  // namespace esd::storage
