#include "tools/esctl_output.h"

#include <optional>

#include "tools/esctl_text.h"

namespace esd::esctl {

void JsonObject::Key(std::string_view key) {
  if (text_.size() > 1) text_.push_back(',');
  text_ += QuoteJson(key);
  text_.push_back(':');
}

JsonObject& JsonObject::String(std::string_view key, std::string_view value) {
  Key(key);
  text_ += QuoteJson(value);
  return *this;
}

JsonObject& JsonObject::Number(std::string_view key, uint64_t value) {
  Key(key);
  text_ += std::to_string(value);
  return *this;
}

JsonObject& JsonObject::Bool(std::string_view key, bool value) {
  Key(key);
  text_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::Null(std::string_view key) {
  Key(key);
  text_ += "null";
  return *this;
}

JsonObject& JsonObject::Raw(std::string_view key, std::string_view json) {
  Key(key);
  text_ += json;
  return *this;
}

namespace {

std::string HumanPayload(const std::string& bytes, const std::string& content_type) {
  if (IsJsonContentType(content_type)) {
    if (auto compact = CompactJson(bytes)) return *compact;
  }
  if (!IsValidUtf8(bytes)) return "base64:" + Base64(bytes);
  return HasControlCharacters(bytes) ? QuoteJson(bytes) : bytes;
}

// Adds `key` (and `key`Encoding when it is base64) to `out`.
void JsonPayload(JsonObject& out, const std::string& key, const std::string& bytes, bool json_content) {
  if (json_content) {
    if (auto compact = CompactJson(bytes)) {
      out.Raw(key, *compact);
      return;
    }
  }
  if (IsValidUtf8(bytes)) {
    out.String(key, bytes);
  } else {
    out.String(key, Base64(bytes));
    out.String(key + "Encoding", "base64");
  }
}

std::string Versions(uint64_t first, uint64_t last) {
  return first == last ? std::to_string(first) : std::to_string(first) + ".." + std::to_string(last);
}

}  // namespace

std::string EventLine(const client::RecordedEvent& e, bool json) {
  if (json) {
    JsonObject o;
    o.String("stream", e.stream)
        .Number("version", e.version)
        .Number("position", e.position)
        .String("id", client::FormatEventId(e.id))
        .String("type", e.type)
        .String("contentType", e.content_type)
        .String("timestamp", FormatTimestamp(e.timestamp_micros));
    const bool json_content = IsJsonContentType(e.content_type);
    JsonPayload(o, "metadata", e.metadata, json_content);
    JsonPayload(o, "data", e.data, json_content);
    return o.Done() + "\n";
  }
  std::string line = std::to_string(e.position) + " " + e.stream + "@" + std::to_string(e.version) + " " + e.type +
                     " " + FormatTimestamp(e.timestamp_micros);
  if (!e.data.empty()) {
    line.push_back(' ');
    line += HumanPayload(e.data, e.content_type);
  }
  return line + "\n";
}

std::string AppendLine(const std::string& stream, const client::EventId& id, const client::AppendResult& r,
                       bool json) {
  if (json) {
    return JsonObject()
               .String("result", r.already_written ? "already-written" : "appended")
               .String("stream", stream)
               .String("id", client::FormatEventId(id))
               .Number("firstVersion", r.first_version)
               .Number("lastVersion", r.last_version)
               .Number("firstPosition", r.first_position)
               .Number("lastPosition", r.last_position)
               .String("timestamp", FormatTimestamp(r.timestamp_micros))
               .Bool("alreadyWritten", r.already_written)
               .Done() +
           "\n";
  }
  std::string where = stream + "@" + Versions(r.first_version, r.last_version) + " at position" +
                      (r.first_position == r.last_position ? " " : "s ") +
                      Versions(r.first_position, r.last_position) + " (" + FormatTimestamp(r.timestamp_micros) +
                      ", id " + client::FormatEventId(id) + ")";
  if (r.already_written) return "already written: " + where + "; this retry wrote nothing new\n";
  return "appended " + where + "\n";
}

std::string StatusText(const client::ServerStatus& s, bool json) {
  if (json) {
    return JsonObject()
               .String("version", s.version)
               .Number("durablePosition", s.durable_position)
               .Number("segments", s.segments)
               .String("dataDir", s.data_dir)
               .Number("connections", s.connections)
               .Number("subscriptions", s.subscriptions)
               .Number("appends", s.appends)
               .Number("eventsWritten", s.events_written)
               .Number("uptimeSeconds", s.uptime_seconds)
               .Done() +
           "\n";
  }
  const uint64_t u = s.uptime_seconds;
  std::string uptime = (u >= 86400 ? std::to_string(u / 86400) + "d " : "") +
                       (u >= 3600 ? std::to_string(u / 3600 % 24) + "h " : "") +
                       (u >= 60 ? std::to_string(u / 60 % 60) + "m " : "") + std::to_string(u % 60) + "s";
  std::string out;
  const auto row = [&](const char* name, const std::string& value) {
    out += name;
    out.append(18 - std::string_view(name).size(), ' ');
    out += value + "\n";
  };
  row("version", s.version);
  row("durable position", std::to_string(s.durable_position) + " (events in the store)");
  row("segments", std::to_string(s.segments));
  row("data dir", s.data_dir);
  row("connections", std::to_string(s.connections));
  row("subscriptions", std::to_string(s.subscriptions));
  row("appends", std::to_string(s.appends) + " (since start)");
  row("events written", std::to_string(s.events_written) + " (since start)");
  row("uptime", uptime);
  return out;
}

}  // namespace esd::esctl
