#include "storage/types.h"

#include <pthread.h>

#include <atomic>
#include <cstring>
#include <random>

#include <xxhash.h>

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

namespace {

// Forks this process came out of as a child. A generator seeded before a fork would give the
// child the parent's next ids, and the store takes an id it has seen for a retry; each
// thread's generator reseeds once it sees the count move. (client/client.cc's NewEventId
// does the same for clients.)
std::atomic<uint64_t> g_forks{0};

std::mt19937_64 SeededGenerator() {
  // Seed with 256 bits from the OS: a 32-bit seed would allow only 2^32 id sequences.
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  return std::mt19937_64(seq);
}

}  // namespace

EventId EventId::Random() {
  static const bool watching_forks = [] {
    return ::pthread_atfork(nullptr, nullptr, [] { g_forks.fetch_add(1, std::memory_order_relaxed); }) == 0;
  }();
  (void)watching_forks;
  struct Generator {
    std::mt19937_64 rng = SeededGenerator();
    uint64_t forks = g_forks.load(std::memory_order_relaxed);
  };
  thread_local Generator g;
  if (const uint64_t forks = g_forks.load(std::memory_order_relaxed); forks != g.forks) g = Generator{};
  std::mt19937_64& rng = g.rng;
  EventId id;
  uint64_t a = rng(), b = rng();
  std::memcpy(id.bytes.data(), &a, 8);
  std::memcpy(id.bytes.data() + 8, &b, 8);
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x40);  // version 4
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
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
