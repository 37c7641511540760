// A stopped store with one damaged batch inside a sealed segment, for the tests of what esd
// and esctl do with damage (tests/server/e2e_damage_test.cc, tests/tools/). Built with the
// storage and domain libraries in 64 KiB segments (start esd on it with kSmallSegmentArgs),
// then one byte of an order event's batch is flipped.
//
//   positions [0, damaged_position)  verify: $all serves them
//   damaged_position                 the flipped batch: one event of order "o-damaged", in
//                                    segment damaged_file, which is sealed; the stream
//                                    "victim" has intact events before and after it there
//   later segments                   the stream "intact" and the order "o-intact", untouched
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace esd::testing {

inline const std::vector<std::string> kSmallSegmentArgs = {"--segment-size", "65536", "--max-event-size", "16384"};

struct DamagedStore {
  std::string damaged_file;       // "segments/<name>.seg", relative to the data directory
  uint64_t damaged_offset = 0;    // of the flipped batch in that file
  uint64_t damaged_position = 0;  // of its (only) event
  uint64_t events = 0;            // in the store
  uint64_t intact_events = 0;     // of the stream "intact"
  uint64_t intact_order_position = 0;  // the last event of order "o-intact"
  // "segments/X.seg offset O (position P)", as esd and esctl name the place.
  std::string Place() const;
};

// Writes the store into `data_dir` (which must not hold one) and damages it.
DamagedStore MakeDamagedStore(const std::filesystem::path& data_dir);

// Not damage: a stopped store (64 KiB segments, as above) whose stream "order-1" holds at
// version 0 (position 0) a JSON event of type OrderCreated, as `esctl append` could write
// it before order-<id> streams were reserved for the Order service. Every byte verifies.
void MakeStoreWithForeignOrderEvent(const std::filesystem::path& data_dir);

}  // namespace esd::testing
