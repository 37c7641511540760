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

// A product such as 250 * 1e-6 lands an ulp away from 0.00025 and would print as
// 0.00025000000000000006; 15 significant digits is what a unit conversion really knows.
double RoundToSignificant15(double v) {
  if (!std::isfinite(v)) return v;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return std::strtod(buf, nullptr);
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
  for (char c : help) {
    if (c == '\\') {
      text_ += "\\\\";
    } else if (c == '\n') {
      text_ += "\\n";
    } else {
      text_ += c;
    }
  }
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void MetricsText::Counter(std::string_view name, std::string_view help, double value) {
  Header(name, help, "counter");
  text_.append(name).append(" ").append(FormatMetricValue(value)).append("\n");
}

void MetricsText::Gauge(std::string_view name, std::string_view help, double value) {
  Header(name, help, "gauge");
  text_.append(name).append(" ").append(FormatMetricValue(value)).append("\n");
}

void MetricsText::Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
  Header(name, help, "gauge");
  text_.append(name);
  char sep = '{';
  for (const auto& [key, v] : labels) {
    KJ_REQUIRE(IsValidName(key) && key.find(':') == std::string::npos, "invalid label name", key);
    text_.append(1, sep).append(key).append("=\"");
    for (char c : v) {
      if (c == '\\') text_ += "\\\\";
      else if (c == '"') text_ += "\\\"";
      else if (c == '\n') text_ += "\\n";
      else text_ += c;
    }
    text_ += '"';
    sep = ',';
  }
  if (!labels.empty()) text_ += '}';
  text_.append(" ").append(FormatMetricValue(value)).append("\n");
}

void MetricsText::Histogram(std::string_view name, std::string_view help,
                            const storage::Histogram::Snapshot& h, double scale) {
  KJ_REQUIRE(h.counts.size() == h.upper_bounds.size() + 1, "histogram snapshot needs one overflow bucket",
             h.counts.size(), h.upper_bounds.size());
  auto scaled = [scale](double v) { return scale == 1.0 ? v : RoundToSignificant15(v * scale); };
  Header(name, help, "histogram");
  uint64_t cumulative = 0;
  auto bucket = [&](std::string_view le) {
    text_.append(name).append("_bucket{le=\"").append(le).append("\"} ");
    text_.append(std::to_string(cumulative)).append("\n");
  };
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    cumulative += h.counts[i];
    bucket(FormatMetricValue(scaled(static_cast<double>(h.upper_bounds[i]))));
  }
  cumulative += h.counts.back();
  bucket("+Inf");
  // Counts stay integers end to end: a double would round them above 2^53.
  std::string sum = scale == 1.0 ? std::to_string(h.sum) : FormatMetricValue(scaled(static_cast<double>(h.sum)));
  text_.append(name).append("_sum ").append(sum).append("\n");
  text_.append(name).append("_count ").append(std::to_string(cumulative)).append("\n");
}

std::string MetricsText::Take() { return std::exchange(text_, std::string()); }

}  // namespace esd::server
