#include "log/log.h"

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

namespace esd::log {

namespace {

struct Destination {
  std::shared_ptr<spdlog::logger> logger;
  Format format = Format::kText;
};

// Replaced by Init; read by every line. A line takes its own reference, so an Init on
// another thread never pulls the logger from under it.
std::mutex g_mu;
std::shared_ptr<const Destination> g_destination;
std::atomic<uint8_t> g_level{static_cast<uint8_t>(Level::kInfo)};

std::shared_ptr<const Destination> Make(Format format, spdlog::sink_ptr sink) {
  auto d = std::make_shared<Destination>();
  d->format = format;
  d->logger = std::make_shared<spdlog::logger>("esd", std::move(sink));
  d->logger->set_level(spdlog::level::trace);  // filtered by g_level before a line is built
  // spdlog writes the time (UTC, %f: microseconds) and the line's end; the rest is ours.
  const std::string pattern = format == Format::kJson ? R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ",%v})"
                                                      : "%Y-%m-%dT%H:%M:%S.%fZ %v";
  d->logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc));
  return d;
}

std::shared_ptr<const Destination> Current() {
  std::lock_guard lock(g_mu);
  if (!g_destination) g_destination = Make(Format::kText, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  return g_destination;
}

// Text: one line per event whatever the message holds.
void AppendEscaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);
    else out += c;
  }
}

std::string FieldKey(const std::string& key) {
  return key == "time" || key == "level" || key == "msg" ? "_" + key : key;
}

std::string TextValue(const Field::Value& value) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    const bool quote = s->empty() || s->find_first_of(" \"=") != std::string::npos;
    if (!quote) {
      std::string out;
      AppendEscaped(out, *s);
      return out;
    }
    std::string out = "\"";
    for (const char c : *s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else {
        AppendEscaped(out, std::string_view(&c, 1));
      }
    }
    return out + "\"";
  }
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  return std::visit(
      [](const auto& v) -> std::string {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) return v;
        else return fmt::format("{}", v);
      },
      value);
}

std::string TextLine(Level level, std::string_view message, Fields fields) {
  std::string out = fmt::format("{:<5} esd: ", LevelName(level));
  AppendEscaped(out, message);
  for (const Field& f : fields) {
    out += ' ';
    out += FieldKey(f.key);
    out += '=';
    out += TextValue(f.value);
  }
  return out;
}

// The members of the line's JSON object after "time" (spdlog's pattern writes the braces).
std::string JsonMembers(Level level, std::string_view message, Fields fields) {
  nlohmann::ordered_json j;
  j["level"] = LevelName(level);
  j["msg"] = std::string(message);
  for (const Field& f : fields) {
    std::visit([&](const auto& v) { j[FieldKey(f.key)] = v; }, f.value);
  }
  // replace: bytes that are not UTF-8 become U+FFFD instead of an exception.
  std::string text = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return text.substr(1, text.size() - 2);  // without the object's braces
}

}  // namespace

std::optional<Level> ParseLevel(std::string_view name) {
  for (Level l : {Level::kTrace, Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (name == LevelName(l)) return l;
  }
  return std::nullopt;
}

std::optional<Format> ParseFormat(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return std::nullopt;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "?";
}

const char* FormatName(Format format) { return format == Format::kJson ? "json" : "text"; }

void Init(Level level, Format format) {
  auto d = Make(format, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  std::lock_guard lock(g_mu);
  g_destination = std::move(d);
  g_level = static_cast<uint8_t>(level);
}

void Init(Level level, Format format, std::ostream& out) {
  auto d = Make(format, std::make_shared<spdlog::sinks::ostream_sink_mt>(out, /*force_flush=*/true));
  std::lock_guard lock(g_mu);
  g_destination = std::move(d);
  g_level = static_cast<uint8_t>(level);
}

bool Enabled(Level level) { return static_cast<uint8_t>(level) >= g_level.load(std::memory_order_relaxed); }

void Write(Level level, std::string_view message, Fields fields) {
  if (!Enabled(level)) return;
  const auto d = Current();
  const std::string payload =
      d->format == Format::kJson ? JsonMembers(level, message, fields) : TextLine(level, message, fields);
  // The payload is passed as an argument, never as a format string: braces in it are text.
  d->logger->log(spdlog::level::info, "{}", payload);
}

}  // namespace esd::log
