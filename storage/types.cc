#include "storage/types.h"

#include <cstring>

#include <xxhash.h>

#include "common/random_uuid.h"

namespace esd::storage {

bool EventId::IsNil() const {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

std::string EventId::ToString() const {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[bytes[i] >> 4]);
    s.push_back(kHex[bytes[i] & 15]);
  }
  return s;
}

std::optional<EventId> EventId::Parse(std::string_view text) {
  EventId id;
  size_t n = 0;
  int high = -1;
  for (char c : text) {
    if (c == '-') continue;
    int v = c >= '0' && c <= '9' ? c - '0'
          : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                 : -1;
    if (v < 0 || n >= 16) return std::nullopt;
    if (high < 0) {
      high = v;
    } else {
      id.bytes[n++] = static_cast<uint8_t>(high << 4 | v);
      high = -1;
    }
  }
  if (n != 16 || high >= 0) return std::nullopt;
  return id;
}

EventId EventId::Random() {
  EventId id;
  id.bytes = common::RandomUuid();
  return id;
}

size_t EventIdHash::operator()(const EventId& id) const noexcept {
  uint64_t a, b;
  std::memcpy(&a, id.bytes.data(), 8);
  std::memcpy(&b, id.bytes.data() + 8, 8);
  return static_cast<size_t>(a ^ (b * 0x9e3779b97f4a7c15ull));
}

std::string ExpectedVersion::ToString() const {
  switch (kind_) {
    case Kind::kAny: return "any";
    case Kind::kNoStream: return "no-stream";
    case Kind::kStreamExists: return "stream-exists";
    case Kind::kExact: return std::to_string(version_.value);
  }
  return "?";
}

}  // namespace esd::storage
