// Text helpers of esctl: a JSON validator, JSON string quoting, UTF-8 checks, base64 and
// ISO 8601 timestamps, and money. Pure functions, no I/O; esctl prints events with them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esd::esctl {

// Checks that `text` is one JSON value (RFC 8259: any value at the top, surrounded by
// optional whitespace; strings must be valid UTF-8) and returns it without the whitespace
// between tokens, so that it fits on one line. nullopt: not JSON. Nesting deeper than 512
// levels counts as not JSON (the validator recurses).
std::optional<std::string> CompactJson(std::string_view text);

// Whether `content_type` names JSON: application/json or a +json type, parameters ignored.
bool IsJsonContentType(std::string_view content_type);

bool IsValidUtf8(std::string_view text);

// Whether `text` (valid UTF-8) holds a control character, which would break a line.
bool HasControlCharacters(std::string_view text);

// `text` as a JSON string literal, quotes included; bytes that are not UTF-8 become U+FFFD.
std::string QuoteJson(std::string_view text);

std::string Base64(std::string_view bytes);

// "2024-05-01T12:00:00.123456Z"
std::string FormatTimestamp(uint64_t micros_since_epoch);

// The inverse, for UTC times "YYYY-MM-DDTHH:MM:SS", optionally with a fraction of 1 to 9
// digits (cut to microseconds) and a trailing "Z": microseconds since the epoch. nullopt:
// not such a time, an impossible date (2025-02-30), or one before 1970.
std::optional<uint64_t> ParseTimestamp(std::string_view text);

// Cents as units with two decimals: 310 -> "3.10", -5 -> "-0.05".
std::string FormatCents(int64_t cents);

}  // namespace esd::esctl
