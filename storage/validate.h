// Checks of caller input against the limits in DESIGN.md ("Writing"): stream names, event
// types, sizes and counts. Every failure is kInvalidArgument with a message that names the
// offending field, so a client can be told exactly what to fix.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "storage/status.h"
#include "storage/store.h"

namespace esd::storage {

// True for well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// 1..255 bytes of UTF-8 without control characters; names starting with '$' are reserved.
Status ValidateStreamName(std::string_view stream);

// Everything about one append request that can be checked without the log. `system`: the
// stream must be a system stream ('$', not "$$": Store::AppendSystem) instead of a user's.
Status ValidateAppend(std::string_view stream, std::span<const format::EventFields> events,
                      const Options& options, uint64_t max_batch_bytes, bool system = false);

}  // namespace esd::storage
