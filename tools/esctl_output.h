// How esctl prints: one line per event, for people or (--json) as one JSON object per line,
// and the same two forms for append results and the server status.
//
// Human event line:  POSITION STREAM@VERSION TYPE TIMESTAMP DATA
//   DATA is the compacted JSON for a JSON content type, the text as is when it is UTF-8
//   without control characters, a JSON string literal when it is UTF-8 with them (so one
//   event stays one line), else "base64:" and its base64. Empty data prints nothing.
// JSON event line: {"stream","version","position","id","type","contentType","timestamp",
//   "metadata","data"}; metadata and data are embedded as JSON values when the content type
//   is JSON and they parse as JSON, else strings, or base64 strings marked with
//   "metadataEncoding"/"dataEncoding": "base64" when they are not UTF-8.
//
// Orders (esctl order ...):
//   a command:  "order ID: version V, position P (command id C)", and "already applied:
//               nothing new written; " before the command id on a retry. JSON: {"orderId",
//               "version","position","alreadyApplied","commandId"}.
//   get:        one "NAME  VALUE" row per field, a "line" row per order line. JSON: one
//               object (OrderJson) with times as RFC 3339 strings, null when not set.
//   list:       one order per line: ID STATUS total T cents (U), N lines, version V, created
//               TIME. JSON: one object per line, as get prints.
//   history:    one event per line: VERSION POSITION TIME TYPE JSON COMMAND-ID, then
//               "(correlation X, by Y)". JSON: {"version","position","time","type","json",
//               "commandId","correlationId","causedBy"} with json embedded as a JSON value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"

namespace esd::esctl {

// Builds one JSON object, keys in the order they are added. Keys and values are written by
// nlohmann-json (kept out of this header); Raw splices JSON text as it is, so that an
// event's JSON data prints with its numbers as stored (see CompactJson).
// The --json conventions (docs/esctl.md, "JSON output"): 64-bit integers are JSON numbers
// (positions, versions, counts, cents), times are RFC 3339 UTC strings with microseconds
// (FormatTimestamp), or null for a time that has not happened.
class JsonObject {
 public:
  JsonObject& String(std::string_view key, std::string_view value);
  JsonObject& Number(std::string_view key, uint64_t value);
  JsonObject& Integer(std::string_view key, int64_t value);
  JsonObject& Real(std::string_view key, double value);
  JsonObject& Bool(std::string_view key, bool value);
  JsonObject& Null(std::string_view key);
  JsonObject& Time(std::string_view key, uint64_t micros);  // null when 0
  JsonObject& Raw(std::string_view key, std::string_view json);  // `json` must be valid JSON
  std::string Done() const { return text_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string text_ = "{";
};

// `values` (each valid JSON) as one JSON array.
std::string JsonArray(const std::vector<std::string>& values);
// `text` as a JSON string literal (nlohmann-json's escaping; invalid UTF-8 as U+FFFD).
std::string JsonString(std::string_view text);

// An order event's JSON as capnp's codec writes it (64-bit integers as strings, times as
// microseconds), in esctl's conventions: integers as numbers, createdAt / placedAt /
// cancelledAt as RFC 3339 times. Other types and text that is not an object: unchanged.
std::string OrderEventJson(std::string_view type, std::string_view capnp_json);

// A write refused for a wrong expected version (append, stream delete, stream meta): the
// flag to retry with ("--expected-version N", or "no-stream" when `actual` is none), and the
// --json line, which ends with '\n'.
std::string RetryWithExpectedVersion(std::optional<uint64_t> actual);
std::string WrongExpectedVersionJson(const std::string& stream, std::optional<uint64_t> actual);

// Each ends with '\n'.
std::string EventLine(const client::RecordedEvent& e, bool json);
std::string AppendLine(const std::string& stream, const client::EventId& id, const client::AppendResult& r,
                       bool json);
std::string StatusText(const client::ServerStatus& s, bool json);
// status's "log" row, online and offline: bytes of log written and disk allocated.
std::string DiskUseText(uint64_t log_bytes, uint64_t allocated_bytes);

std::string OrderCommandLine(const std::string& order_id, const std::string& command_id,
                             const client::CommandOutcome& ok, bool json);
std::string OrderText(const client::OrderView& order, bool json);
std::string OrderListLine(const client::OrderView& order, bool json);
std::string HistoryLine(const client::HistoryEntry& e, bool json);

}  // namespace esd::esctl
