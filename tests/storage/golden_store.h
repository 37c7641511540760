// The golden stores of tests/storage/golden/: data directories written by an esd of an
// older segment format version and checked in, so that every later esd proves it still
// opens them and reads back the same events (docs/storage.md, "Format versions and the
// golden store"). This file holds what the tests and the generator share: the manifest
// (what a golden store holds, as a text file next to it) and the digest over its events.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "storage/format.h"
#include "storage/status.h"

struct XXH3_state_s;

namespace esd::storage {
class Store;
}

namespace esd::storage::testing {

// XXH3-64 (seed 0) over events, added in $all order. Each event is encoded as
//   u64 position | u64 stream version | u64 timestamp (micros) | 16 bytes event id |
//   u32 n + n bytes, for each of: stream, type, content type, metadata, data
// with every integer little-endian. The encoding is ours and fixed: it does not follow the
// segment format, so that a format change cannot change a golden store's digest.
class EventDigest {
 public:
  EventDigest();
  ~EventDigest();
  EventDigest(const EventDigest&) = delete;
  EventDigest& operator=(const EventDigest&) = delete;

  void Add(const format::EventView& event);
  uint64_t value() const;
  uint64_t count() const { return count_; }

 private:
  std::unique_ptr<XXH3_state_s, void (*)(XXH3_state_s*)> state_;
  uint64_t count_ = 0;
};

struct GoldenStream {
  std::string name;
  uint64_t events = 0;
  uint64_t last_version = 0;
  bool operator==(const GoldenStream&) const = default;
};

// For gtest's messages: "cart-1: 16 events, last version 15".
inline void PrintTo(const GoldenStream& s, std::ostream* out) {
  *out << s.name << ": " << s.events << " events, last version " << s.last_version;
}

// An order as the Order service answered for it when the golden store was made.
struct GoldenOrder {
  std::string id;
  std::string customer;
  std::string status;  // open, placed, cancelled
  int64_t total_cents = 0;
  uint64_t lines = 0;
};

// The manifest file (tests/storage/golden/vN.manifest), one fact per line, '#' comments:
//   format-version 1
//   events N                          every event of $all; positions 0 .. N-1
//   digest xxh3-64 HEX                EventDigest over them, 16 lowercase hex digits
//   stream COUNT LAST_VERSION NAME    one per stream, NAME is the rest of the line
//   order ID CUSTOMER STATUS TOTAL_CENTS LINES
// ComputeManifest reads the store for all but the orders; the generator script asks the
// daemon for those (esctl order get) while it still runs.
struct GoldenManifest {
  uint32_t format_version = 0;
  uint64_t events = 0;
  uint64_t digest = 0;
  std::vector<GoldenStream> streams;  // in name order
  std::vector<GoldenOrder> orders;
};

// Reads every event of `store` from position 0 (pages of $all) and computes the manifest;
// `format_version` is left for the caller. Fails with the read's status, or kCorruption if
// the positions are not dense from 0.
Result<GoldenManifest> ComputeManifest(const Store& store);

// The text above, without the orders and with a comment header `comment` (lines that are
// prefixed with "# " here).
std::string FormatManifest(const GoldenManifest& manifest, const std::string& comment);

// nullopt and `*error` (with the line number) on a line it does not understand.
std::optional<GoldenManifest> ParseManifest(const std::string& text, std::string* error);

// Copies a golden store folder (recursively) to `dest`, which must not exist yet.
void CopyGoldenStore(const std::filesystem::path& from, const std::filesystem::path& dest);

}  // namespace esd::storage::testing
