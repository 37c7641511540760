#include "tools/esctl_text.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

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

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Recursive descent over RFC 8259's grammar; appends every token to `out_`.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  std::optional<std::string> Run() {
    SkipSpace();
    if (!Value(0)) return std::nullopt;
    SkipSpace();
    if (i_ != text_.size()) return std::nullopt;
    return std::move(out_);
  }

 private:
  static constexpr int kMaxDepth = 512;

  void SkipSpace() {
    while (i_ < text_.size() && (text_[i_] == ' ' || text_[i_] == '\t' || text_[i_] == '\n' || text_[i_] == '\r')) ++i_;
  }
  bool Peek(char c) const { return i_ < text_.size() && text_[i_] == c; }
  bool Take(char c) {
    if (!Peek(c)) return false;
    out_.push_back(c);
    ++i_;
    return true;
  }
  bool Literal(std::string_view word) {
    if (text_.substr(i_, word.size()) != word) return false;
    out_.append(word);
    i_ += word.size();
    return true;
  }

  bool Value(int depth) {
    if (depth > kMaxDepth || i_ >= text_.size()) return false;
    switch (text_[i_]) {
      case '{': return Object(depth + 1);
      case '[': return Array(depth + 1);
      case '"': return String();
      case 't': return Literal("true");
      case 'f': return Literal("false");
      case 'n': return Literal("null");
      default: return Number();
    }
  }

  bool Object(int depth) {
    Take('{');
    SkipSpace();
    if (Take('}')) return true;
    while (true) {
      SkipSpace();
      if (!Peek('"') || !String()) return false;
      SkipSpace();
      if (!Take(':')) return false;
      SkipSpace();
      if (!Value(depth)) return false;
      SkipSpace();
      if (Take('}')) return true;
      if (!Take(',')) return false;
    }
  }

  bool Array(int depth) {
    Take('[');
    SkipSpace();
    if (Take(']')) return true;
    while (true) {
      SkipSpace();
      if (!Value(depth)) return false;
      SkipSpace();
      if (Take(']')) return true;
      if (!Take(',')) return false;
    }
  }

  bool String() {
    const size_t start = i_++;
    while (i_ < text_.size()) {
      const char c = text_[i_];
      if (c == '"') {
        out_.append(text_.substr(start, ++i_ - start));
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= text_.size()) return false;
        const char e = text_[i_];
        if (e == 'u') {
          if (i_ + 4 >= text_.size()) return false;
          for (size_t k = 1; k <= 4; ++k) {
            if (!IsHex(text_[i_ + k])) return false;
          }
          i_ += 5;
        } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
          ++i_;
        } else {
          return false;
        }
        continue;
      }
      const size_t n = Utf8SequenceLength(text_, i_);
      if (n == 0) return false;
      i_ += n;
    }
    return false;
  }

  bool Number() {
    const size_t start = i_;
    if (Peek('-')) ++i_;
    if (Peek('0')) {
      ++i_;
    } else {
      if (i_ >= text_.size() || !IsDigit(text_[i_])) return false;
      while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
    }
    if (Peek('.')) {
      ++i_;
      if (i_ >= text_.size() || !IsDigit(text_[i_])) return false;
      while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
    }
    if (Peek('e') || Peek('E')) {
      ++i_;
      if (Peek('+') || Peek('-')) ++i_;
      if (i_ >= text_.size() || !IsDigit(text_[i_])) return false;
      while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
    }
    out_.append(text_.substr(start, i_ - start));
    return true;
  }

  std::string_view text_;
  size_t i_ = 0;
  std::string out_;
};

}  // namespace

std::optional<std::string> CompactJson(std::string_view text) { return JsonParser(text).Run(); }

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
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\\ufffd";  // not UTF-8: the replacement character keeps the output valid JSON
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
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
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(micros_since_epoch % 1'000'000));
  return buf;
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

}  // namespace esd::esctl
