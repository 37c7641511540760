// The events of the crash test, shared by the process that writes them (crash_writer.cc)
// and the test that checks them after a kill (crash_test.cc). Every byte is a function of
// (stream, version, salt), and the metadata names the batch ("b=<first>/<count> s=<salt>"),
// so the checker rebuilds each event and its batch without keeping a copy.
#pragma once

#include <cstdint>
#include <string>

#include "storage/store.h"
#include "test_util.h"

namespace esd::storage::crash {

inline constexpr int kStreams = 5;

inline std::string StreamName(int s) { return "crash-" + std::to_string(s); }

using testing::Mix;

// 0..200 bytes of data, fixed by (stream, version, salt).
inline size_t DataSize(const std::string& stream, uint64_t version, uint64_t salt) {
  uint64_t h = 1469598103934665603ull;
  for (char c : stream) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return static_cast<size_t>(Mix(h ^ Mix(version * 3 + 1) ^ Mix(salt + 17)) % 201);
}

inline std::string BatchMetadata(uint64_t first_version, uint64_t count, uint64_t salt) {
  return "b=" + std::to_string(first_version) + "/" + std::to_string(count) + " s=" + std::to_string(salt);
}

inline EventData CrashEvent(const std::string& stream, uint64_t version, uint64_t first_version, uint64_t count,
                            uint64_t salt) {
  EventData e = testing::MakeEvent(stream, version, salt, DataSize(stream, version, salt));
  e.metadata = BatchMetadata(first_version, count, salt);
  return e;
}

}  // namespace esd::storage::crash
