// A builder of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), for GET /metrics.
// Not thread-safe: build one per scrape.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/histogram.h"

namespace esd::server {

// Label pairs of one sample, in the order they print: {{"outcome", "ok"}, {"rule", ""}}.
// Names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with "__" (KJ_REQUIRE); values may
// hold any bytes: backslash, double quote and newline are escaped as the format asks.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsText {
 public:
  struct Sample {
    MetricLabels labels;
    double value = 0;
  };
  struct HistogramSeries {
    MetricLabels labels;
    storage::Histogram::Snapshot histogram;
  };

  // Each call emits "# HELP", "# TYPE" and the sample lines of one metric family. Names must
  // match [a-zA-Z_:][a-zA-Z0-9_:]* (KJ_REQUIRE); each name should be used once per scrape.
  // Help text may hold any characters: backslash and newline are escaped.
  void Counter(std::string_view name, std::string_view help, double value);
  void Gauge(std::string_view name, std::string_view help, double value);
  // One sample with labels (MetricLabels): name{k1="v1",k2="v2"} value.
  void Gauge(std::string_view name, std::string_view help, const MetricLabels& labels, double value);
  // Renders cumulative buckets name_bucket{le="..."}, +Inf, name_sum, name_count. `scale`
  // multiplies bounds and sum (e.g. 1e-6 to turn microseconds into seconds). The snapshot's
  // buckets are read one by one while writers record, so +Inf and _count are both taken from
  // the buckets' total, which keeps them equal as Prometheus requires.
  void Histogram(std::string_view name, std::string_view help, const storage::Histogram::Snapshot& h,
                 double scale = 1.0);
  // A family with one sample (or histogram) per label set. No samples: the HELP and TYPE
  // lines alone, which tells a scraper the family exists. A histogram's labels must not
  // include "le", which its buckets use.
  void Counter(std::string_view name, std::string_view help, const std::vector<Sample>& samples);
  void Gauge(std::string_view name, std::string_view help, const std::vector<Sample>& samples);
  void Histogram(std::string_view name, std::string_view help, const std::vector<HistogramSeries>& series,
                 double scale = 1.0);

  std::string Take();  // the text so far; resets

 private:
  void Header(std::string_view name, std::string_view help, std::string_view type);
  void Samples(std::string_view name, const std::vector<Sample>& samples);
  // Appends `{a="x",b="y"` (no closing brace) or nothing for no labels and no `extra`.
  void LabelSet(const MetricLabels& labels, std::string_view extra_name = {}, std::string_view extra_value = {});
  void HistogramLines(std::string_view name, const MetricLabels& labels, const storage::Histogram::Snapshot& h,
                      double scale);
  std::string text_;
};

// Counters of one family keyed by their label values, for the RPC thread to count and the
// HTTP thread to read: each Add takes a mutex (nanoseconds; an RPC costs ~56 us). The label
// names are fixed at construction; each Add passes one value per name.
class CounterFamily {
 public:
  explicit CounterFamily(std::vector<std::string> label_names) : names_(std::move(label_names)) {}
  CounterFamily(const CounterFamily&) = delete;
  CounterFamily& operator=(const CounterFamily&) = delete;

  void Add(const std::vector<std::string>& values, uint64_t n = 1);
  // The counter of one label set, valid as long as the family, for a set counted on every
  // call (an append's "ok"): adding to it takes no lock and no lookup. A set whose counter
  // is still 0 is not among the samples.
  std::atomic<uint64_t>& At(const std::vector<std::string>& values);
  uint64_t Get(const std::vector<std::string>& values) const;  // 0 when never added
  // Every label set added so far, in value order, for MetricsText::Counter.
  std::vector<MetricsText::Sample> Samples() const;

 private:
  const std::vector<std::string> names_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::atomic<uint64_t>> counts_;  // a node stays put: At
};

// Integral values print as integers (12345, not 1.2345e+04), others with the shortest text
// that reads back as the same double; NaN and infinities as the format spells them.
std::string FormatMetricValue(double value);

}  // namespace esd::server
