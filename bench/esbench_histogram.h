// esbench's latency histogram: HdrHistogram-style log-linear buckets over nanoseconds.
//
// Values below 128 ns have a bucket each; above, every power of two [2^e, 2^(e+1)) is cut
// into 128 equal buckets, so a bucket is at most 1/128 (< 0.8%) of the values it holds.
// Percentiles are read from the bucket counts (never from averages) and reported as the
// bucket's midpoint. Fixed size (~36 KiB), O(1) record, merged by adding counts.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace esbench {

class Histogram {
 public:
  static constexpr int kSubBits = 7;                    // 128 sub-buckets per power of two
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr int kBuckets = static_cast<int>(kSub * (64 - kSubBits + 1));

  Histogram() : counts_(kBuckets, 0) {}

  void Record(uint64_t ns) {
    ++counts_[Index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
    min_ = std::min(min_, ns);
  }

  void Merge(const Histogram& other) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return total_ ? max_ : 0; }
  uint64_t min() const { return total_ ? min_ : 0; }

  // The value at quantile q (0 < q <= 1): the midpoint of the bucket holding the
  // ceil(q * count)-th smallest value, clamped to the exact min and max (q = 1: the max).
  uint64_t ValueAt(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    if (rank == total_) return max_;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(Mid(i), min_, max_);
    }
    return max_;
  }

 private:
  static int Index(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int shift = (63 - std::countl_zero(v)) - kSubBits;  // >= 0
    const uint64_t top = v >> shift;                            // in [kSub, 2*kSub)
    return static_cast<int>(kSub * static_cast<uint64_t>(shift + 1) + (top - kSub));
  }
  static uint64_t Mid(int index) {
    const uint64_t i = static_cast<uint64_t>(index);
    if (i < kSub) return i;
    const uint64_t shift = i / kSub - 1;
    const uint64_t top = kSub + i % kSub;
    const uint64_t lo = top << shift;
    return lo + ((uint64_t{1} << shift) >> 1);
  }

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace esbench
