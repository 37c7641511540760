#include "storage/validate.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "storage/format.h"

namespace esd::storage {

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) { ++p; continue; }
    size_t n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
    else return false;
    if (static_cast<size_t>(end - p) <= n) return false;
    for (size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += n + 1;
  }
  return true;
}

namespace {

// Every byte printable ASCII (0x20..0x7e): then the text is valid UTF-8 without a control
// character. Event types and content types nearly always are, and this one pass costs a
// third of the two full checks (W3 spent 15% of its instructions validating).
bool IsPrintableAscii(std::string_view s) {
  for (char ch : s) {
    if (static_cast<unsigned char>(ch) - 0x20u > 0x7eu - 0x20u) return false;
  }
  return true;
}

// C0 controls, DEL, and the C1 range (U+0080..U+009F, encoded as C2 80..C2 9F).
bool HasControlCharacter(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0) return true;
  }
  return false;
}

Status ValidateName(std::string_view what, std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) {
    return Status::InvalidArgument(std::string(what) + " must be 1.." + std::to_string(max) +
                                   " bytes, got " + std::to_string(s.size()));
  }
  if (IsPrintableAscii(s)) return Status::Ok();  // nearly every name: one pass, not two
  if (!IsValidUtf8(s)) return Status::InvalidArgument(std::string(what) + " is not valid UTF-8");
  if (HasControlCharacter(s)) {
    return Status::InvalidArgument(std::string(what) + " contains a control character");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateStreamName(std::string_view stream) {
  Status s = ValidateName("stream name", stream, format::kMaxStreamNameSize);
  if (!s.ok()) return s;
  if (stream.front() == '$') {
    return Status::InvalidArgument("stream name '" + std::string(stream) +
                                   "' starts with '$', which is reserved for system streams");
  }
  return Status::Ok();
}

Status ValidateAppend(std::string_view stream, std::span<const format::EventFields> events,
                      const Options& options, uint64_t max_batch_bytes, bool system) {
  Status s = system ? ValidateName("stream name", stream, format::kMaxStreamNameSize) : ValidateStreamName(stream);
  if (!s.ok()) return s;
  if (system && (stream.front() != '$' || stream.starts_with("$$"))) {
    return Status::InvalidArgument("system stream name '" + std::string(stream) +
                                   "' must start with '$' and not with '$$' (stream metadata)");
  }
  if (events.empty()) return Status::InvalidArgument("an append needs at least one event");
  if (events.size() > options.max_events_per_append) {
    return Status::InvalidArgument("too many events in one append: " + std::to_string(events.size()) +
                                   " > limit " + std::to_string(options.max_events_per_append));
  }
  // This runs for every append: messages are built only when something is wrong.
  auto at = [](size_t i) { return "event " + std::to_string(i) + ": "; };
  uint64_t batch_bytes = format::kBatchHeaderSize;
  for (size_t i = 0; i < events.size(); ++i) {
    const format::EventFields& e = events[i];
    if (e.id.IsNil()) return Status::InvalidArgument(at(i) + "event id must not be nil");
    if (e.type.empty() || e.type.size() > format::kMaxEventTypeSize ||
        (!IsPrintableAscii(e.type) && (!IsValidUtf8(e.type) || HasControlCharacter(e.type)))) {
      return ValidateName(at(i) + "event type", e.type, format::kMaxEventTypeSize);
    }
    if (e.content_type.size() > format::kMaxContentTypeSize ||
        (!IsPrintableAscii(e.content_type) && (!IsValidUtf8(e.content_type) || HasControlCharacter(e.content_type)))) {
      return Status::InvalidArgument(at(i) + "content type must be at most 255 bytes of printable UTF-8");
    }
    const uint64_t size = format::EventRecordSize(stream, e);
    if (size > options.max_event_size) {
      return Status::InvalidArgument(at(i) + "event is " + std::to_string(size) +
                                     " bytes encoded, over the limit of " +
                                     std::to_string(options.max_event_size) + " (esd --max-event-size)");
    }
    batch_bytes += size;
  }
  if (events.size() > 1) {
    // Sorted as two 64-bit words (any order finds duplicates; this one is cheaper than
    // EventId's bytewise memcmp).
    struct Key {
      uint64_t hi, lo;
      size_t index;
      bool operator<(const Key& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
      bool SameId(const Key& o) const { return hi == o.hi && lo == o.lo; }
    };
    std::vector<Key> ids(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      std::memcpy(&ids[i].hi, events[i].id.bytes.data(), 8);
      std::memcpy(&ids[i].lo, events[i].id.bytes.data() + 8, 8);
      ids[i].index = i;
    }
    std::sort(ids.begin(), ids.end());
    for (size_t k = 1; k < ids.size(); ++k) {
      if (ids[k].SameId(ids[k - 1])) {
        const size_t later = std::max(ids[k].index, ids[k - 1].index);
        return Status::InvalidArgument(at(later) + "event id " + events[later].id.ToString() +
                                       " appears twice in the append");
      }
    }
  }
  if (batch_bytes > max_batch_bytes) {
    return Status::InvalidArgument("append of " + std::to_string(batch_bytes) +
                                   " bytes does not fit in one segment (at most " +
                                   std::to_string(max_batch_bytes) + ")");
  }
  return Status::Ok();
}

}  // namespace esd::storage
