// Runs the Order projection inside the daemon, on the KJ event loop: it loads its snapshot,
// catches up with $all in slices (yielding to I/O between them), then waits for the writer
// to move the durable position. Queries that need "at least position P" wait for it here.
// It saves a snapshot every `snapshot_every` events it applies and at a graceful stop.
//
// Damage in the log stops it where the damage is: it never skips past events it cannot
// read. It logs that once and keeps answering from what it applied before; a query that
// needs the damage's position or later is told so (Wait::kDamaged) instead of waiting.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/projections.h"
#include "server/damage_log.h"
#include "server/notifier.h"
#include "storage/background.h"
#include "storage/store.h"

namespace esd::server {

class ProjectionRunner {
 public:
  // A snapshot is taken when at least `snapshot_every` events were applied since the last
  // one AND `snapshot_interval` has passed: its cost grows with the number of orders, so
  // it must not follow the event rate alone.
  // `damage_log` must outlive this.
  ProjectionRunner(storage::Store& store, DurableNotifier& notifier, kj::Timer& timer, DamageLog& damage_log,
                   std::filesystem::path snapshot_path, uint64_t snapshot_every,
                   kj::Duration snapshot_interval = 60 * kj::SECONDS);

  void Start();
  const domain::OrderProjection& projection() const { return projection_; }

  enum class Wait { kApplied, kTimeout, kDamaged };
  // kApplied once the projection has applied the event at `position` (at once if it has, or
  // for position 0, which asks for no wait); kDamaged (at once, or when it happens) when it
  // stopped at damage before applying it; kTimeout after `timeout`.
  // A wait that ends (or that the caller drops) leaves nothing behind.
  kj::Promise<Wait> WaitFor(uint64_t position, kj::Duration timeout);
  // The same for "every event below `end`" (no exception for 0): kApplied once the
  // checkpoint has reached `end`.
  kj::Promise<Wait> CaughtUpTo(uint64_t end, kj::Duration timeout);

  // For forget-customer (server/order_service.cc), on this loop, between two turns of the
  // catch-up:
  // Applies, now, every durable event the projection has not applied, as the loop would
  // (waiters woken, counted, damage stops it): after a CaughtUpTo, only what came since.
  // The damage when it stops there.
  storage::Status CatchUpNow();
  // The ids of the customer's orders in the live projection, whatever their status.
  std::vector<std::string> OrdersOf(const std::string& customer_id) const {
    return projection_.OrdersOf(customer_id);
  }
  // Drops the orders from the live projection and from a rebuild in progress: GetOrder and
  // ListOrders no longer answer them, and no snapshot from now on holds them. (The
  // tombstones of their streams would drop them when applied: this is for "at once".)
  void Drop(const std::vector<std::string>& order_ids);
  size_t waiter_count() const { return waiters_->size(); }

  // The damage the projection stopped at (its checkpoint is the damage's position); nullptr
  // while it runs.
  const storage::Status* damage() const { return damage_ ? &*damage_ : nullptr; }
  // The same for other threads (/ready): the damage's place and what is wrong there, or "".
  std::string damage_text() const {
    std::lock_guard lock(damage_text_mu_);
    return damage_text_;
  }

  // Replays $all from position 0 into a fresh projection, in slices on this event loop,
  // while queries keep being answered from the current one; when the fresh one has caught
  // up it takes over (and is snapshotted). Resolves then, with the number of events it
  // read. A second call while one runs joins it.
  kj::Promise<uint64_t> Rebuild();

  // How far a rebuild in progress has got (its checkpoint: events read from position 0);
  // the live checkpoint when none runs. For progress reports.
  uint64_t rebuild_checkpoint() const {
    return rebuilding_ != nullptr ? rebuilding_->checkpoint() : checkpoint();
  }

  // Saves the projection as it is now and returns once it is on disk (or failed): the
  // projection is encoded on this loop, then written, after any save still in progress, by
  // the runner's writer thread. Under Durability::kInterval or kNever the write first waits
  // for one fdatasync (a snapshot covers only events on disk), and writes nothing if that
  // fails. For an operator's request and the graceful stop; the periodic saves do not wait.
  storage::Status SaveSnapshot();
  // Why the snapshot found at construction was not used ("" if there was none or it was):
  // the projection then catches up from position 0.
  const std::string& snapshot_ignored() const { return snapshot_ignored_; }
  // 1 when a snapshot was found at construction and not used, else 0: for /metrics.
  uint64_t snapshot_load_failures() const { return snapshot_ignored_.empty() ? 0 : 1; }
  uint64_t checkpoint() const { return checkpoint_.load(std::memory_order_relaxed); }  // any thread
  // Events of order streams that are not order events, skipped by this runner's projections
  // since it started (a rebuild meets them again); any thread. The first is logged.
  uint64_t skipped_events() const { return skipped_.load(std::memory_order_relaxed); }

 private:
  kj::Promise<void> Loop();
  // One slice of catch-up with the loop's bookkeeping (checkpoint copy, waiters, skipped
  // events, damage). The events read, or the damage it stopped at.
  storage::Result<uint64_t> Slice(uint64_t max_events);
  kj::Promise<Wait> AddWaiter(uint64_t key, kj::Duration timeout);
  void WakeWaiters();
  void StopAtDamage(const storage::Status& damage);
  // Counts what `p` skipped since `before` (its skipped_events() then), logging the first.
  void CountSkipped(const domain::OrderProjection& p, uint64_t before);

  storage::Store& store_;
  DurableNotifier& notifier_;
  kj::Timer& timer_;
  DamageLog& damage_log_;
  const std::filesystem::path snapshot_path_;
  const uint64_t snapshot_every_;
  const kj::Duration snapshot_interval_;
  kj::TimePoint last_snapshot_;
  std::string snapshot_ignored_;  // before projection_: its initialiser sets it
  domain::OrderProjection projection_;
  uint64_t applied_since_snapshot_ = 0;
  std::atomic<uint64_t> checkpoint_{0};  // a copy for /metrics
  std::atomic<uint64_t> skipped_{0};     // for /metrics
  std::optional<storage::Status> damage_;  // set once: the loop has stopped
  mutable std::mutex damage_text_mu_;
  std::string damage_text_;  // damage_'s message, under damage_text_mu_
  // By (position, serial). Shared with each wait's clean-up, which may run after this is
  // destroyed (an RPC call dropped at shutdown).
  using Waiters = std::map<std::pair<uint64_t, uint64_t>, kj::Own<kj::PromiseFulfiller<Wait>>>;
  std::shared_ptr<Waiters> waiters_ = std::make_shared<Waiters>();
  uint64_t next_waiter_ = 0;
  kj::Promise<void> loop_ = nullptr;
  kj::Promise<uint64_t> RebuildLoop(uint64_t read);
  kj::Own<domain::OrderProjection> rebuilding_;
  kj::Maybe<kj::ForkedPromise<uint64_t>> rebuild_;
  // The periodic save: captured here (a reference per order), encoded and written by writer_
  // (the encoding took the loop ~80 ms of CPU at 50 k orders; the file write and three syncs
  // ~100-150 ms under load). Skipped while the last one is still being written: the next
  // period saves a newer state anyway.
  void SaveSnapshotInBackground();
  std::shared_ptr<std::atomic<bool>> writing_ = std::make_shared<std::atomic<bool>>(false);
  storage::TaskQueue writer_{"esd-proj-snap"};  // last: destroyed (finishing its writes) first
};

}  // namespace esd::server
