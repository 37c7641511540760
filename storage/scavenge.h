// Scavenge: rewrites sealed segments without their removed events, so their disk space comes
// back (docs/storage.md, "Scavenge"). Internal to storage/; the API is Store::StartScavenge,
// StopScavenge and GetScavengeStatus (storage/store.h).
//
// What is removed is decided by Store::Impl::RemovalOf (storage/lifecycle.h) and nothing else.
// Removal is a prefix of each stream's versions, so what remains of a batch is a contiguous
// suffix of its events: the rewritten batch keeps the original's stream, timestamp and the
// kept event records byte for byte (positions, versions, ids, bytes), with a new header
// (first_position of its first kept event, event_count, checksum, sync_mark = its own
// offset). A rewritten segment is format 2 (storage/format.h): compact, its header's
// scavenged_end_position set, ending in a tips record for the streams it lost entirely.
//
// One thread, started by Start. It
//  1. asks the writer to seal the active segment when that holds a removed event (a roll
//     through the writer's queue), so that everything removed before the scavenge began can
//     be rewritten;
//  2. for each sealed segment, decides from its index (runs per stream, RemovalOf) whether
//     anything in it is removed, and if so reads it with pread in large chunks (not through
//     the mapping, so readers' pages are not evicted for it), verifying every batch, and
//     writes the rewritten segment in large chunks;
//  3. swaps it in, crash-safe at every step (Swap below); between segments it checks Stop.
// Its I/O runs at the lowest best-effort priority (ioprio_set), so that appends keep their
// rate (docs/storage.md says what was measured).
//
// Lifetimes. The Segment and IndexFile objects a swap replaces are kept: IndexFiles until the
// Store is destroyed (the stream directory holds views of their names), Segments (whose
// mappings EventViews point into) for Options::scavenge_retire_after after the swap, then
// unmapped and closed, which is when the kernel frees the old file's blocks. The old file
// itself becomes the next spare when there is none (zero-filled in full first: no old byte
// stays on disk) or is unlinked.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/segment.h"
#include "storage/store.h"

namespace esd::storage {

class Scavenger {
 public:
  explicit Scavenger(Store::Impl& store) : store_(store) {}
  ~Scavenger();  // stops a running scavenge (after the segment it is on) and joins
  Scavenger(const Scavenger&) = delete;
  Scavenger& operator=(const Scavenger&) = delete;

  // kInvalidArgument when one is running already.
  Status Start();
  void Stop();
  ScavengeStatus status() const;

 private:
  void Run();
  // Rewrites sealed slot `k` if anything in it is removed; false (and status_.error set)
  // when it failed.
  Status ScavengeSlot(size_t k, TimestampMicros now);
  // Asks the writer to seal the active segment if it holds a removed event.
  Status SealActiveIfNeeded(TimestampMicros now);
  void ReleaseRetired(bool all);
  void Update(const std::function<void(ScavengeStatus&)>& f);

  Store::Impl& store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ScavengeStatus status_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closing_{false};  // the store is closing: no more waiting for retired segments
  std::thread thread_;
  struct Retired {
    std::unique_ptr<Segment> segment;
    std::chrono::steady_clock::time_point at;
    std::filesystem::path retired_path;  // a link to the old file, for recycling ("" = none)
  };
  std::vector<Retired> retired_;  // mu_
};

}  // namespace esd::storage
