// Text helpers of esctl: JSON checking and quoting (through nlohmann-json), UTF-8 checks,
// base64, RFC 3339 timestamps, and money. Pure functions, no I/O; esctl prints events with them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esd::esctl {

// Checks that `text` is one JSON value (RFC 8259: any value at the top, surrounded by
// optional whitespace; strings must be valid UTF-8) and returns it without the whitespace
// between tokens, so that it fits on one line; every token stays as written (numbers are
// not reformatted). nullopt: not JSON. Checked by nlohmann-json, without a depth limit.
std::optional<std::string> CompactJson(std::string_view text);

// Whether `content_type` names JSON: application/json or a +json type, parameters ignored.
bool IsJsonContentType(std::string_view content_type);

bool IsValidUtf8(std::string_view text);

// Whether `text` (valid UTF-8) holds a control character, which would break a line.
bool HasControlCharacters(std::string_view text);

// `text` as a JSON string literal, quotes included (nlohmann-json's escaping); bytes that
// are not UTF-8 become U+FFFD, so a line stays valid JSON. Event data and metadata that are
// not UTF-8 are never passed here: they print as base64 (tools/esctl_output.h).
std::string QuoteJson(std::string_view text);

std::string Base64(std::string_view bytes);

// RFC 3339, UTC, microseconds: "2024-05-01T12:00:00.123456Z". Every time esctl prints, in
// text and --json, goes through this one function.
std::string FormatTimestamp(uint64_t micros_since_epoch);

// The inverse, for UTC times "YYYY-MM-DDTHH:MM:SS", optionally with a fraction of 1 to 9
// digits (cut to microseconds) and a trailing "Z": microseconds since the epoch. nullopt:
// not such a time, an impossible date (2025-02-30), or one before 1970.
std::optional<uint64_t> ParseTimestamp(std::string_view text);

// A duration as `esctl stream meta --max-age` takes it: a whole number followed by one unit
// of ms, s, m, h or d ("500ms", "30s", "15m", "2h", "7d"), as microseconds. nullopt: no
// unit, another unit, not a whole number, zero, or more than fits in 64 bits of microseconds.
std::optional<uint64_t> ParseDuration(std::string_view text);
// The inverse for display: the largest of those units that divides `micros` exactly
// ("7d", "90m", "1500ms"); a count of microseconds ("1500us") when none does.
std::string FormatDuration(uint64_t micros);

// Cents as units with two decimals: 310 -> "3.10", -5 -> "-0.05".
std::string FormatCents(int64_t cents);

}  // namespace esd::esctl
