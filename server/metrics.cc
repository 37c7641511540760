#include "server/metrics.h"

#include <kj/debug.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace esd::server {
namespace {

bool IsValidName(std::string_view name) {
  auto first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; };
  if (name.empty() || !first(name[0])) return false;
  for (char c : name.substr(1)) {
    if (!first(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  auto first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (name.empty() || !first(name[0]) || name.rfind("__", 0) == 0) return false;
  for (char c : name.substr(1)) {
    if (!first(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

// A product such as 250 * 1e-6 lands an ulp away from 0.00025 and would print as
// 0.00025000000000000006; 15 significant digits is what a unit conversion really knows.
double RoundToSignificant15(double v) {
  if (!std::isfinite(v)) return v;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return std::strtod(buf, nullptr);
}

// The format's escapes: backslash and newline in help text; in a label value the double
// quote too.
void AppendEscaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return "0";  // also -0, which would print as "-0"
  char buf[64];
  std::to_chars_result r;
  // Shortest-form to_chars picks 1e+06 over 1000000 and 1e-04 over 0.0001. Integers below
  // 1e21 read better in full; other values take %g's rule (exponent below -4 or past the
  // digits), as Prometheus' own clients print them, so that bucket labels look familiar.
  if (std::trunc(value) == value && std::fabs(value) < 1e21) {
    r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed);
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::general);
  }
  KJ_ASSERT(r.ec == std::errc());
  return std::string(buf, r.ptr);
}

void MetricsText::Header(std::string_view name, std::string_view help, std::string_view type) {
  KJ_REQUIRE(IsValidName(name), "invalid metric name", std::string(name));
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  AppendEscaped(text_, help, /*quote=*/false);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void MetricsText::LabelSet(const MetricLabels& labels, std::string_view extra_name, std::string_view extra_value) {
  if (labels.empty() && extra_name.empty()) return;
  char sep = '{';
  auto pair = [&](std::string_view label, std::string_view value) {
    KJ_REQUIRE(IsValidLabelName(label), "invalid label name", std::string(label));
    text_ += sep;
    sep = ',';
    text_.append(label).append("=\"");
    AppendEscaped(text_, value, /*quote=*/true);
    text_ += '"';
  };
  for (const auto& [label, value] : labels) pair(label, value);
  if (!extra_name.empty()) pair(extra_name, extra_value);
}

void MetricsText::Samples(std::string_view name, const std::vector<Sample>& samples) {
  for (const Sample& s : samples) {
    text_.append(name);
    LabelSet(s.labels);
    if (!s.labels.empty()) text_ += '}';
    text_.append(" ").append(FormatMetricValue(s.value)).append("\n");
  }
}

void MetricsText::Counter(std::string_view name, std::string_view help, double value) {
  Counter(name, help, std::vector<Sample>{Sample{{}, value}});
}

void MetricsText::Gauge(std::string_view name, std::string_view help, double value) {
  Gauge(name, help, std::vector<Sample>{Sample{{}, value}});
}

void MetricsText::Counter(std::string_view name, std::string_view help, const std::vector<Sample>& samples) {
  Header(name, help, "counter");
  Samples(name, samples);
}

void MetricsText::Gauge(std::string_view name, std::string_view help, const std::vector<Sample>& samples) {
  Header(name, help, "gauge");
  Samples(name, samples);
}

void MetricsText::Gauge(std::string_view name, std::string_view help, const MetricLabels& labels, double value) {
  Gauge(name, help, std::vector<Sample>{{labels, value}});
}

void MetricsText::Histogram(std::string_view name, std::string_view help,
                            const storage::Histogram::Snapshot& h, double scale) {
  Histogram(name, help, std::vector<HistogramSeries>{HistogramSeries{{}, h}}, scale);
}

void MetricsText::Histogram(std::string_view name, std::string_view help, const std::vector<HistogramSeries>& series,
                            double scale) {
  for (const HistogramSeries& s : series) {
    const auto& h = s.histogram;
    KJ_REQUIRE(h.counts.size() == h.upper_bounds.size() + 1, "histogram snapshot needs one overflow bucket",
               h.counts.size(), h.upper_bounds.size());
    for (const auto& label : s.labels) KJ_REQUIRE(label.first != "le", "a histogram's buckets use the label le");
  }
  Header(name, help, "histogram");
  for (const HistogramSeries& s : series) HistogramLines(name, s.labels, s.histogram, scale);
}

void MetricsText::HistogramLines(std::string_view name, const MetricLabels& labels,
                                 const storage::Histogram::Snapshot& h, double scale) {
  auto scaled = [scale](double v) { return scale == 1.0 ? v : RoundToSignificant15(v * scale); };
  uint64_t cumulative = 0;
  auto bucket = [&](std::string_view le) {
    text_.append(name).append("_bucket");
    LabelSet(labels, "le", le);
    text_.append("} ").append(std::to_string(cumulative)).append("\n");
  };
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    cumulative += h.counts[i];
    bucket(FormatMetricValue(scaled(static_cast<double>(h.upper_bounds[i]))));
  }
  cumulative += h.counts.back();
  bucket("+Inf");
  auto series = [&](std::string_view suffix) {
    text_.append(name).append(suffix);
    LabelSet(labels);
    if (!labels.empty()) text_ += '}';
    text_ += ' ';
  };
  // Counts stay integers end to end: a double would round them above 2^53.
  std::string sum = scale == 1.0 ? std::to_string(h.sum) : FormatMetricValue(scaled(static_cast<double>(h.sum)));
  series("_sum");
  text_.append(sum).append("\n");
  series("_count");
  text_.append(std::to_string(cumulative)).append("\n");
}

std::string MetricsText::Take() { return std::exchange(text_, std::string()); }

void CounterFamily::Add(const std::vector<std::string>& values, uint64_t n) {
  At(values).fetch_add(n, std::memory_order_relaxed);
}

std::atomic<uint64_t>& CounterFamily::At(const std::vector<std::string>& values) {
  KJ_REQUIRE(values.size() == names_.size(), "one value per label", values.size(), names_.size());
  std::lock_guard lock(mu_);
  return counts_[values];
}

uint64_t CounterFamily::Get(const std::vector<std::string>& values) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(values);
  return it == counts_.end() ? 0 : it->second.load(std::memory_order_relaxed);
}

std::vector<MetricsText::Sample> CounterFamily::Samples() const {
  std::lock_guard lock(mu_);
  std::vector<MetricsText::Sample> out;
  for (const auto& [values, counter] : counts_) {
    const uint64_t count = counter.load(std::memory_order_relaxed);
    if (count == 0) continue;  // At() made it, nothing counted yet
    MetricsText::Sample s;
    // An empty value is the same as no label to Prometheus: left out, it reads better.
    for (size_t i = 0; i < names_.size(); ++i) {
      if (!values[i].empty()) s.labels.emplace_back(names_[i], values[i]);
    }
    s.value = static_cast<double>(count);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace esd::server
