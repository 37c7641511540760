// Random (version 4) UUIDs, the event ids that nobody gave: one piece of code for the store
// (storage::EventId::Random) and the client library (client::NewEventId), which links nothing
// of the store. Header-only for that reason: this folder has no library of its own.
//
// Each thread draws from its own generator, seeded with 256 bits from the OS (a 32-bit seed
// would allow only 2^32 id sequences). A forked child reseeds: a generator seeded before a
// fork would give the child its parent's next ids, which esd takes for retries of the
// parent's appends.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>

namespace esd::common {

namespace random_uuid_internal {

// Forks this process came out of as a child (pthread_atfork, registered on first use).
inline std::atomic<uint64_t> forks{0};

inline std::mt19937_64 SeededGenerator() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  return std::mt19937_64(seq);
}

}  // namespace random_uuid_internal

// 16 random bytes with the version 4 and RFC 4122 variant bits set.
inline std::array<uint8_t, 16> RandomUuid() {
  namespace internal = random_uuid_internal;
  static const bool watching_forks = [] {
    return ::pthread_atfork(nullptr, nullptr, [] { internal::forks.fetch_add(1, std::memory_order_relaxed); }) == 0;
  }();
  (void)watching_forks;
  struct Generator {
    std::mt19937_64 rng = internal::SeededGenerator();
    uint64_t forks = internal::forks.load(std::memory_order_relaxed);
  };
  thread_local Generator g;
  if (const uint64_t forks = internal::forks.load(std::memory_order_relaxed); forks != g.forks) g = Generator{};
  std::array<uint8_t, 16> id;
  const uint64_t a = g.rng(), b = g.rng();
  std::memcpy(id.data(), &a, 8);
  std::memcpy(id.data() + 8, &b, 8);
  id[6] = static_cast<uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
  id[8] = static_cast<uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

}  // namespace esd::common
