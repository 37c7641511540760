// esd's log: one line per event on stderr, each with an RFC 3339 UTC timestamp (to the
// microsecond), a level and a message, as text for people or as JSON for log shippers.
//
//   text: 2026-12-04T16:44:42.123456Z info  esd: ready: rpc=127.0.0.1:7400 events=12
//   json: {"time":"2026-12-04T16:44:42.123456Z","level":"info","msg":"ready: ...","events":12}
//
// spdlog (Debian's libspdlog, with the external fmt) does the sink, the per-line flush,
// the locking and the timestamp; this header keeps spdlog out of the files that log.
// Decisions (docs/server.md, "Log"):
// - The level is written by us, not by spdlog's %l, so that the names are the ones of
//   --log-level (spdlog says "warning").
// - JSON escaping is nlohmann-json's (nlohmann-json3-dev): every string is valid JSON, and
//   bytes that are not UTF-8 become U+FFFD rather than a broken line.
// - Text lines stay one line per event: a control character in a message or a field is
//   written as \n, \r, \t or \xHH. A field's value is quoted ("...") when it is empty or
//   holds a space, '"' or '='.
// - Text lines say "esd: " before the message: the daemon's lines read as they did
//   before the log had levels, and can be told apart from other programs' on one stderr.
//
// Thread-safe: any thread may log at any time. Init replaces the destination and is meant
// for the start of main (and for tests); before it, lines go to stderr as text, level info.
#pragma once

#include <fmt/core.h>

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace esd::log {

enum class Level : uint8_t { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };
enum class Format : uint8_t { kText = 0, kJson = 1 };

// "trace", "debug", "info", "warn", "error"; nullopt for anything else.
std::optional<Level> ParseLevel(std::string_view name);
// "text" or "json"; nullopt for anything else.
std::optional<Format> ParseFormat(std::string_view name);
const char* LevelName(Level level);
const char* FormatName(Format format);

// A structured value next to the message: a key of its own in JSON ("key":value, numbers
// as numbers), "key=value" after the message in text. Keys are plain ASCII names; one that
// is "time", "level" or "msg" is written with a leading '_' so that it cannot hide them.
struct Field {
  using Value = std::variant<std::string, int64_t, uint64_t, double, bool>;
  Field(std::string_view k, std::string_view v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Field(std::string_view k, T v)
      : key(k), value(std::is_signed_v<T> ? Value(static_cast<int64_t>(v)) : Value(static_cast<uint64_t>(v))) {}
  std::string key;
  Value value;
};
using Fields = std::initializer_list<Field>;

// Lines at `level` and above go to stderr in `format`.
void Init(Level level, Format format);
// The same, to `out` (tests); `out` must outlive every later line, until the next Init.
void Init(Level level, Format format, std::ostream& out);

// Whether a line at `level` would be written: to skip work for a line nobody reads.
bool Enabled(Level level);

// Writes one line. `message` may hold anything (it is escaped for the format).
void Write(Level level, std::string_view message, Fields fields = {});

template <typename... Args>
void Log(Level level, fmt::format_string<Args...> format, Args&&... args) {
  if (Enabled(level)) Write(level, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Trace(fmt::format_string<Args...> format, Args&&... args) {
  Log(Level::kTrace, format, std::forward<Args>(args)...);
}
template <typename... Args>
void Debug(fmt::format_string<Args...> format, Args&&... args) {
  Log(Level::kDebug, format, std::forward<Args>(args)...);
}
template <typename... Args>
void Info(fmt::format_string<Args...> format, Args&&... args) {
  Log(Level::kInfo, format, std::forward<Args>(args)...);
}
template <typename... Args>
void Warn(fmt::format_string<Args...> format, Args&&... args) {
  Log(Level::kWarn, format, std::forward<Args>(args)...);
}
template <typename... Args>
void Error(fmt::format_string<Args...> format, Args&&... args) {
  Log(Level::kError, format, std::forward<Args>(args)...);
}

}  // namespace esd::log
