#include "tools/esctl_text.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

namespace esd::esctl {

namespace {

// Length of the UTF-8 sequence at text[i], or 0 when it is not valid there (overlong
// forms, surrogates and code points past U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f;
  else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<std::string> CompactJson(std::string_view text) {
  // nlohmann checks the grammar, UTF-8 and escapes (iteratively: no depth limit). The value
  // is not re-serialised through nlohmann, which would rewrite the user's numbers (1e2 as
  // 100.0, 12345678901234567890123 as 1.2345678901234568e+22) and drop duplicate keys:
  // only the whitespace between tokens goes.
  if (!nlohmann::json::accept(text)) return std::nullopt;
  std::string out;
  out.reserve(text.size());
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      out.push_back(c);
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out.push_back(c);
      in_string = c == '"';
    }
  }
  return out;
}

bool IsJsonContentType(std::string_view content_type) {
  std::string media;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (c != ' ' && c != '\t') media.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return media == "application/json" ||
         (media.rfind("application/", 0) == 0 && media.size() > 5 && media.ends_with("+json"));
}

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool HasControlCharacters(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::string QuoteJson(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Base64(std::string_view bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) {
      v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    }
    for (size_t k = 0; k < 4; ++k) out.push_back(k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

std::string FormatTimestamp(uint64_t micros_since_epoch) {
  const std::time_t seconds = static_cast<std::time_t>(micros_since_epoch / 1'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char date[32];
  const size_t n = std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  char micros[16];
  std::snprintf(micros, sizeof(micros), ".%06uZ", static_cast<unsigned>(micros_since_epoch % 1'000'000));
  return std::string(date, n) + micros;
}

std::optional<uint64_t> ParseTimestamp(std::string_view text) {
  if (!text.empty() && text.back() == 'Z') text.remove_suffix(1);
  // Fixed positions: YYYY-MM-DDTHH:MM:SS, then an optional fraction.
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < kShape.size()) return std::nullopt;
  for (size_t i = 0; i < kShape.size(); ++i) {
    if (kShape[i] == 'd' ? !IsDigit(text[i]) : text[i] != kShape[i]) return std::nullopt;
  }
  const auto number = [&](size_t at, size_t n) {
    unsigned v = 0;
    for (size_t i = at; i < at + n; ++i) v = v * 10 + static_cast<unsigned>(text[i] - '0');
    return v;
  };
  uint64_t micros = 0;
  std::string_view fraction = text.substr(kShape.size());
  if (!fraction.empty()) {
    if (fraction[0] != '.' || fraction.size() < 2 || fraction.size() > 10) return std::nullopt;
    fraction.remove_prefix(1);
    for (size_t i = 0; i < 6; ++i) {
      if (i < fraction.size() && !IsDigit(fraction[i])) return std::nullopt;
      micros = micros * 10 + (i < fraction.size() ? static_cast<unsigned>(fraction[i] - '0') : 0);
    }
    for (size_t i = 6; i < fraction.size(); ++i) {
      if (!IsDigit(fraction[i])) return std::nullopt;
    }
  }
  using namespace std::chrono;
  const year_month_day date{year(static_cast<int>(number(0, 4))), month(number(5, 2)), day(number(8, 2))};
  const unsigned hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (!date.ok() || date.year() < year(1970) || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  const auto days = static_cast<uint64_t>(sys_days(date).time_since_epoch().count());
  return ((days * 24 + hour) * 60 + minute) * 60'000'000 + second * uint64_t{1'000'000} + micros;
}

std::string FormatCents(int64_t cents) {
  // Through the magnitude as unsigned, so that INT64_MIN has one too.
  const uint64_t magnitude = cents < 0 ? uint64_t{0} - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s%llu.%02llu", cents < 0 ? "-" : "",
                static_cast<unsigned long long>(magnitude / 100), static_cast<unsigned long long>(magnitude % 100));
  return buf;
}

namespace {

struct DurationUnit {
  std::string_view suffix;
  uint64_t micros;
};
// Longest suffix first: "ms" before "m" and "s".
constexpr DurationUnit kDurationUnits[] = {
    {"ms", 1'000}, {"d", 86'400'000'000}, {"h", 3'600'000'000}, {"m", 60'000'000}, {"s", 1'000'000}};

}  // namespace

std::optional<uint64_t> ParseDuration(std::string_view text) {
  for (const DurationUnit& unit : kDurationUnits) {
    if (text.size() <= unit.suffix.size() || text.substr(text.size() - unit.suffix.size()) != unit.suffix) continue;
    const std::string_view number = text.substr(0, text.size() - unit.suffix.size());
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
    if (ec != std::errc() || p != number.data() + number.size() || n == 0) return std::nullopt;
    if (n > UINT64_MAX / unit.micros) return std::nullopt;
    return n * unit.micros;
  }
  return std::nullopt;
}

std::string FormatDuration(uint64_t micros) {
  constexpr DurationUnit kLargestFirst[] = {
      {"d", 86'400'000'000}, {"h", 3'600'000'000}, {"m", 60'000'000}, {"s", 1'000'000}, {"ms", 1'000}};
  for (const DurationUnit& unit : kLargestFirst) {
    if (micros != 0 && micros % unit.micros == 0) return std::to_string(micros / unit.micros) + std::string(unit.suffix);
  }
  return std::to_string(micros) + "us";
}

}  // namespace esd::esctl
