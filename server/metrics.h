// A builder of the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), for GET /metrics.
// Not thread-safe: build one per scrape.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/histogram.h"

namespace esd::server {

class MetricsText {
 public:
  // Each call emits "# HELP", "# TYPE" and the sample lines of one metric family. Names must
  // match [a-zA-Z_:][a-zA-Z0-9_:]* (KJ_REQUIRE); each name should be used once per scrape.
  // Help text may hold any characters: backslash and newline are escaped.
  void Counter(std::string_view name, std::string_view help, double value);
  void Gauge(std::string_view name, std::string_view help, double value);
  // One sample with labels: name{k1="v1",k2="v2"} value. Label names must be valid names;
  // values may hold any characters (backslash, quote and newline are escaped).
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  // Renders cumulative buckets name_bucket{le="..."}, +Inf, name_sum, name_count. `scale`
  // multiplies bounds and sum (e.g. 1e-6 to turn microseconds into seconds). The snapshot's
  // buckets are read one by one while writers record, so +Inf and _count are both taken from
  // the buckets' total, which keeps them equal as Prometheus requires.
  void Histogram(std::string_view name, std::string_view help, const storage::Histogram::Snapshot& h,
                 double scale = 1.0);

  std::string Take();  // the text so far; resets

 private:
  void Header(std::string_view name, std::string_view help, std::string_view type);
  std::string text_;
};

// Integral values print as integers (12345, not 1.2345e+04), others with the shortest text
// that reads back as the same double; NaN and infinities as the format spells them.
std::string FormatMetricValue(double value);

}  // namespace esd::server
