#include "tools/esctl_output.h"

#include <capnp/schema.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "domain/codec.h"
#include "protocol/orders.capnp.h"
#include "tools/esctl_text.h"

namespace esd::esctl {

namespace {

// One scalar as JSON text, written by nlohmann-json (strings: invalid UTF-8 as U+FFFD).
template <typename T>
std::string Scalar(const T& value) {
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void JsonObject::Key(std::string_view key) {
  if (text_.size() > 1) text_.push_back(',');
  text_ += Scalar(std::string(key));
  text_.push_back(':');
}

JsonObject& JsonObject::String(std::string_view key, std::string_view value) {
  Key(key);
  text_ += Scalar(std::string(value));
  return *this;
}

JsonObject& JsonObject::Number(std::string_view key, uint64_t value) {
  Key(key);
  text_ += Scalar(value);
  return *this;
}

JsonObject& JsonObject::Integer(std::string_view key, int64_t value) {
  Key(key);
  text_ += Scalar(value);
  return *this;
}

JsonObject& JsonObject::Real(std::string_view key, double value) {
  Key(key);
  text_ += Scalar(value);
  return *this;
}

JsonObject& JsonObject::Bool(std::string_view key, bool value) {
  Key(key);
  text_ += Scalar(value);
  return *this;
}

JsonObject& JsonObject::Null(std::string_view key) {
  Key(key);
  text_ += "null";
  return *this;
}

JsonObject& JsonObject::Time(std::string_view key, uint64_t micros) {
  return micros == 0 ? Null(key) : String(key, FormatTimestamp(micros));
}

JsonObject& JsonObject::Raw(std::string_view key, std::string_view json) {
  Key(key);
  text_ += json;
  return *this;
}

std::string JsonArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (const auto& v : values) out += (out.size() > 1 ? "," : "") + v;
  return out + "]";
}

std::string JsonString(std::string_view text) { return Scalar(std::string(text)); }

namespace {

// The order events' struct schemas (protocol/orders.capnp), by event type.
std::optional<capnp::StructSchema> OrderEventSchema(std::string_view type) {
  if (type == "OrderCreated") return capnp::Schema::from<orders::OrderCreated>();
  if (type == "ItemAdded") return capnp::Schema::from<orders::ItemAdded>();
  if (type == "ItemRemoved") return capnp::Schema::from<orders::ItemRemoved>();
  if (type == "OrderPlaced") return capnp::Schema::from<orders::OrderPlaced>();
  if (type == "OrderCancelled") return capnp::Schema::from<orders::OrderCancelled>();
  return std::nullopt;
}

// Fields of the order events that hold microseconds since the Unix epoch.
bool IsTimeField(std::string_view name) { return name == "createdAt" || name == "placedAt" || name == "cancelledAt"; }

}  // namespace

std::string OrderEventJson(std::string_view type, std::string_view capnp_json) {
  auto schema = OrderEventSchema(type);
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(capnp_json, nullptr, false);
  if (!schema || !j.is_object()) return std::string(capnp_json);
  for (auto field : schema->getFields()) {
    const auto which = field.getType().which();
    if (which != capnp::schema::Type::INT64 && which != capnp::schema::Type::UINT64) continue;
    const std::string name = field.getProto().getName().cStr();
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) continue;
    const std::string text = it->get<std::string>();
    try {
      if (IsTimeField(name)) {
        const uint64_t micros = std::stoull(text);
        *it = micros == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(FormatTimestamp(micros));
      } else if (which == capnp::schema::Type::INT64) {
        *it = std::stoll(text);
      } else {
        *it = std::stoull(text);
      }
    } catch (const std::exception&) {
      // Not a number after all: left as capnp wrote it.
    }
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// Order events (protocol/orders.capnp) decoded to JSON through capnp's codec; nullopt for
// other content types, or bytes that do not decode (they are then shown as bytes).
std::optional<std::string> OrderJson(const client::RecordedEvent& e, bool metadata) {
  if (e.content_type != domain::kOrderContentType) return std::nullopt;
  if (!metadata) {
    auto json = domain::EventToJson(e.type, e.data);
    if (json) return OrderEventJson(e.type, *json);
    return std::nullopt;
  }
  const domain::CommandContext c = domain::DecodeMetadata(e.metadata);
  JsonObject o;
  o.String("commandId", c.command_id).String("correlationId", c.correlation_id).String("causedBy", c.caused_by);
  return o.Done();
}

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

// An order's time: RFC 3339, or null / "-" when it has not happened.
void JsonTime(JsonObject& out, std::string_view key, uint64_t micros) { out.Time(key, micros); }
std::string HumanTime(uint64_t micros) { return micros == 0 ? "-" : FormatTimestamp(micros); }

std::string Money(int64_t cents) { return std::to_string(cents) + " cents (" + FormatCents(cents) + ")"; }

std::string OrderJson(const client::OrderView& v) {
  std::string lines = "[";
  for (const auto& l : v.lines) {
    if (lines.size() > 1) lines.push_back(',');
    lines += JsonObject()
                 .String("sku", l.sku)
                 .Number("quantity", l.quantity)
                 .Integer("unitPriceCents", l.unit_price_cents)
                 .Done();
  }
  lines.push_back(']');
  JsonObject o;
  o.String("orderId", v.order_id)
      .String("customerId", v.customer_id)
      .String("status", v.status)
      .Raw("lines", lines)
      .Integer("totalCents", v.total_cents)
      .String("total", FormatCents(v.total_cents))
      .Number("version", v.version)
      .Number("lastPosition", v.last_position);
  JsonTime(o, "createdAt", v.created_at_micros);
  JsonTime(o, "placedAt", v.placed_at_micros);
  JsonTime(o, "cancelledAt", v.cancelled_at_micros);
  o.String("cancelReason", v.cancel_reason);
  return o.Done() + "\n";
}

// Text from the server (ids, SKUs, reasons) as is, or quoted when it would break the line.
std::string Field(const std::string& text) {
  return text.empty() || HasControlCharacters(text) || !IsValidUtf8(text) ? QuoteJson(text) : text;
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
    if (auto meta = OrderJson(e, true)) o.Raw("metadata", *meta);
    else JsonPayload(o, "metadata", e.metadata, json_content);
    if (auto data = OrderJson(e, false)) o.Raw("data", *data);
    else JsonPayload(o, "data", e.data, json_content);
    return o.Done() + "\n";
  }
  std::string line = std::to_string(e.position) + " " + e.stream + "@" + std::to_string(e.version) + " " + e.type +
                     " " + FormatTimestamp(e.timestamp_micros);
  if (!e.data.empty()) {
    line.push_back(' ');
    auto order = OrderJson(e, false);
    line += order ? *order : HumanPayload(e.data, e.content_type);
  }
  return line + "\n";
}

std::string RetryWithExpectedVersion(std::optional<uint64_t> actual) {
  return actual ? "--expected-version " + std::to_string(*actual) : "--expected-version no-stream";
}

std::string WrongExpectedVersionJson(const std::string& stream, std::optional<uint64_t> actual) {
  JsonObject o;
  o.String("result", "wrong-expected-version").String("stream", stream);
  if (actual) o.Number("actualVersion", *actual);
  else o.Null("actualVersion");
  return o.Done() + "\n";
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

std::string DiskUseText(uint64_t log_bytes, uint64_t allocated_bytes) {
  return std::to_string(log_bytes) + " bytes written, " + std::to_string(allocated_bytes) +
         " bytes allocated on disk (with the zeros kept ahead of the writer)";
}

std::string StatusText(const client::ServerStatus& s, bool json) {
  if (json) {
    return JsonObject()
               .String("version", s.version)
               .Number("durablePosition", s.durable_position)
               .Number("segments", s.segments)
               .Number("bytes", s.bytes)
               .Number("streams", s.streams)
               .Number("logBytes", s.log_bytes)
               .Number("allocatedBytes", s.allocated_bytes)
               .String("dataDir", s.data_dir)
               .Number("connections", s.connections)
               .Number("subscriptions", s.subscriptions)
               .Number("appends", s.appends)
               .Number("eventsWritten", s.events_written)
               .Number("uptimeSeconds", s.uptime_seconds)
               .Raw("projections", JsonArray({JsonObject()
                                                  .String("name", "orders")
                                                  .Number("checkpoint", s.projection_checkpoint)
                                                  .Number("lag", s.projection_lag)
                                                  .Done()}))
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
  row("segments", std::to_string(s.segments) + ", " + std::to_string(s.bytes) + " bytes with index files");
  row("log", DiskUseText(s.log_bytes, s.allocated_bytes));
  row("streams", std::to_string(s.streams));
  row("data dir", s.data_dir);
  row("connections", std::to_string(s.connections));
  row("subscriptions", std::to_string(s.subscriptions));
  row("appends", std::to_string(s.appends) + " (since start)");
  row("events written", std::to_string(s.events_written) + " (since start)");
  row("uptime", uptime);
  row("projection", "orders at checkpoint " + std::to_string(s.projection_checkpoint) + ", lag " +
                        std::to_string(s.projection_lag) + " events");
  return out;
}

std::string OrderCommandLine(const std::string& order_id, const std::string& command_id,
                             const client::CommandOutcome& ok, bool json) {
  if (json) {
    return JsonObject()
               .String("orderId", order_id)
               .Number("version", ok.version)
               .Number("position", ok.position)
               .Bool("alreadyApplied", ok.already_applied)
               .String("commandId", command_id)
               .Done() +
           "\n";
  }
  return "order " + Field(order_id) + ": version " + std::to_string(ok.version) + ", position " +
         std::to_string(ok.position) + " (" + (ok.already_applied ? "already applied: nothing new written; " : "") +
         "command id " + Field(command_id) + ")\n";
}

std::string OrderText(const client::OrderView& v, bool json) {
  if (json) return OrderJson(v);
  std::string out;
  const auto row = [&](std::string_view name, const std::string& value) {
    out += name;
    out.append(15 - name.size(), ' ');
    out += value + "\n";
  };
  row("order", Field(v.order_id));
  row("customer", Field(v.customer_id));
  row("status", v.status);
  if (v.lines.empty()) row("lines", "none");
  for (const auto& l : v.lines) {
    row("line", Field(l.sku) + " " + std::to_string(l.quantity) + " x " + std::to_string(l.unit_price_cents) +
                    " cents");
  }
  row("total", Money(v.total_cents));
  row("version", std::to_string(v.version));
  row("last position", std::to_string(v.last_position));
  row("created", HumanTime(v.created_at_micros));
  row("placed", HumanTime(v.placed_at_micros));
  row("cancelled", HumanTime(v.cancelled_at_micros));
  if (v.cancelled_at_micros != 0 || !v.cancel_reason.empty()) row("cancel reason", Field(v.cancel_reason));
  return out;
}

std::string OrderListLine(const client::OrderView& v, bool json) {
  if (json) return OrderJson(v);
  return Field(v.order_id) + " " + v.status + " total " + Money(v.total_cents) + ", " +
         std::to_string(v.lines.size()) + (v.lines.size() == 1 ? " line" : " lines") + ", version " +
         std::to_string(v.version) + ", created " + HumanTime(v.created_at_micros) + "\n";
}

std::string HistoryLine(const client::HistoryEntry& e, bool json) {
  const std::optional<std::string> fields = CompactJson(OrderEventJson(e.type, e.json));
  if (json) {
    JsonObject o;
    o.Number("version", e.version).Number("position", e.position).String("time", FormatTimestamp(e.timestamp_micros));
    o.String("type", e.type);
    if (fields) o.Raw("json", *fields);
    else o.String("json", e.json);
    return o.String("commandId", e.command_id)
               .String("correlationId", e.correlation_id)
               .String("causedBy", e.caused_by)
               .Done() +
           "\n";
  }
  std::string line = std::to_string(e.version) + " " + std::to_string(e.position) + " " +
                     FormatTimestamp(e.timestamp_micros) + " " + Field(e.type) + " " +
                     (fields ? *fields : QuoteJson(e.json)) + " " + Field(e.command_id);
  std::string extra;
  if (!e.correlation_id.empty()) extra = "correlation " + Field(e.correlation_id);
  if (!e.caused_by.empty()) extra += (extra.empty() ? "by " : ", by ") + Field(e.caused_by);
  if (!extra.empty()) line += " (" + extra + ")";
  return line + "\n";
}

}  // namespace esd::esctl
