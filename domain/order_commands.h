// Runs Order commands against the store: load the order (fold its stream), decide, append
// the events with the loaded version as the expected version; on a conflict (someone else
// appended in between) reload and decide again, a bounded number of times.
//
// Idempotency: a command's id becomes its events' ids (CommandEventId), and the state
// remembers its last commands; a retried command is answered with its original result and
// writes nothing. A command id names one command: the events record the command's
// fingerprint, and the same id with another command on this order is a kIdempotencyConflict
// naming the id and what it was first used for; nothing is written.
//
// Bounded memory: the order remembers its last OrderState::kRecentCommands commands, and
// the store the first event id of its last 2^20 to 2^21 appends (its id window,
// docs/storage.md). A command id reused on another order, or a retry of a command older
// than the order's last 32, is refused (kIdempotencyConflict) only while the store's window
// still holds its events' ids; past that it is decided again and written with the same
// event ids. Retries are expected within seconds, and command ids are never reused.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "domain/order.h"
#include "domain/order_cache.h"
#include "domain/order_history.h"
#include "domain/snapshots.h"
#include "storage/store.h"

namespace esd::domain {

std::string OrderStream(const std::string& order_id);  // "order-<id>"
// The id in an order's stream name ("order-<id>", the id not empty); nullopt for any other.
std::optional<std::string> OrderIdOf(std::string_view stream);
// OrderIdOf(stream) has a value; without building the id.
bool IsOrderStream(std::string_view stream);

// Streams named "order-<id>" (OrderIdOf) belong to the Order service: a plain append to one
// is refused, so that an order's stream holds only events its commands decided. The
// refusal for people (what is reserved, and what to use instead), or nullopt for a stream
// anyone may append to. The one place that decides it (EventStore.append asks it).
std::optional<std::string> RawAppendRefusal(std::string_view stream);

// 16 bytes from (command id, index of the event in the command), the same every time.
storage::EventId CommandEventId(const std::string& command_id, uint32_t index);

// What a command is, as 64 bits: XXH3 of its kind and every field, so that two commands
// differ in fingerprint unless they are the same command (the order id included). Never 0,
// which stands for "not known" (events written before fingerprints existed).
uint64_t CommandFingerprint(const OrderCommand& command);

class OrderCommands {
 public:
  struct Options {
    int max_attempts = 5;         // decisions per command before giving up on conflicts
    uint64_t snapshot_every = 50; // a snapshot each time an order crosses a multiple of this
                                  // many events (0: never)
    // Runs the policy's snapshot write (a log sync, the file, a rename, a directory sync):
    // empty, on the thread of the command; the daemon hands it to a thread of its own so
    // that no command holds its event loop for a disk. The job owns what it needs, but
    // refers to this OrderCommands and its store, which must outlive it.
    std::function<void(std::function<void()>)> write_snapshot;
    // Orders kept loaded at their version (OrderCache: LRU by count; 0: none), so that a
    // command on an order loaded or changed before reads no event of it.
    size_t cached_orders = 10'000;
  };

  // `store` must outlive this. Execute blocks on the store (AppendSync): call it from a
  // thread that may block, never from an append callback.
  explicit OrderCommands(storage::Store& store) : OrderCommands(store, Options{}) {}
  OrderCommands(storage::Store& store, Options options)
      : store_(store), options_(options), snapshots_(store.directory()), cache_(options.cached_orders) {}

  struct LoadStats {
    std::optional<uint64_t> cached_version;    // the cached state it started from
    std::optional<uint64_t> snapshot_version;  // the snapshot it started from (no cached one)
    uint64_t events_read = 0;                  // events folded on top of it
    std::string snapshot_ignored;              // why a snapshot there was not used, or ""
    std::optional<ForeignEvent> foreign;       // the event that is not an order event, if any
    bool hard_deleted = false;                 // the order's stream is a tombstone: nothing read
  };
  // Loads that found a snapshot and could not use it (LoadStats::snapshot_ignored set), since
  // construction: for /metrics. Any thread.
  uint64_t snapshot_load_failures() const { return snapshot_load_failures_.load(std::memory_order_relaxed); }
  // The order: its cached state or its latest snapshot, plus the events after it. The cached
  // state (Options::cached_orders) is used when the stream's version, as readers see it, is
  // the cached one: a command on an order this service just changed reads no event of it.
  // (It is never ahead: a state is cached after its append was acknowledged, and readers
  // see an append before it is acknowledged, in every Durability mode. Were it ahead, it
  // would be this service's own acknowledged write, the state the writer checks the next
  // expected version against, so it is used then too.) When the stream is further on
  // (another writer, another OrderCommands), only the events after the cached version are
  // read. A read that fails (damage) or meets a foreign event drops the cached entry:
  // nothing cached is used past it. Each load leaves the order in the cache.
  // A snapshot is used only if the log holds the event it ends with
  // (OrderSnapshotMismatch); otherwise the whole stream is read. kInvalidArgument if the stream holds something that is not an order event (named
  // by position; `stats->foreign` says which). Prepare and Execute answer that as a
  // rejection by the rule foreign-event: the bytes verify, so it is not damage.
  // Deleted orders (storage/lifecycle.h): an order whose stream was deleted loads as an
  // order without events (status kNone: "order-not-found" to every command but a create),
  // from what reads return and nothing else. A stream that has metadata (a delete, a
  // truncation, an expiry, custom bytes: StreamInfo::has_metadata) is always read from
  // the log: its cached state and its snapshot may hold events that are gone, so neither
  // is used (nor kept) for it. A hard-deleted stream is not read at all
  // (`stats->hard_deleted`).
  storage::Result<OrderState> Load(const std::string& order_id, LoadStats* stats = nullptr) const;

  // Loads the order and writes its snapshot now, whatever the policy says (an operator's
  // `snapshot create`). The state written, or nullopt when the order has no events.
  // Every snapshot write (this one and the policy's, in Finish) first syncs the log through
  // the order's last event (SyncLogThrough): with Durability::kInterval or kNever that is
  // one fdatasync on the calling thread, and no snapshot when it fails.
  storage::Result<std::optional<OrderState>> SaveSnapshot(const std::string& order_id) const;

  struct Accepted {
    uint64_t first_version = 0, last_version = 0;
    uint64_t position = 0;         // of the last event: a query may wait for it
    bool already_applied = false;  // a retry: nothing new was written
  };
  struct Conflict {
    int attempts = 0;  // the order kept changing under the command
  };
  // storage::Status: kIdempotencyConflict for a command id already used for another
  // command; kCorruption for damage (named by position); the store's other failures.
  using Outcome = std::variant<Accepted, Rejection, Conflict, storage::Status>;

  // `context.command_fingerprint` is ignored: it is the command's, set here.
  Outcome Execute(const OrderCommand& command, const CommandContext& context);

  // Execute in steps, for callers that must not block on the append (the RPC service on
  // its event loop): Prepare loads and decides; the caller appends `plan.events` to
  // `plan.stream` with `plan.expected`; Finish judges the append's result. Finish returns
  // nullopt when the order changed meanwhile: Prepare again (at most max_attempts times).
  // When the store refuses the command's event ids, Finish reads the order once more: a
  // retry that raced its own first attempt is Accepted (already_applied), anything else a
  // kIdempotencyConflict.
  // When the append makes the order cross a multiple of snapshot_every, Finish writes its
  // snapshot, which under Durability::kInterval or kNever waits for one fdatasync first.
  // `stats` (if given) says how Prepare loaded the order, e.g. a snapshot it could not use.
  struct Plan {
    std::string stream;
    storage::ExpectedVersion expected = storage::ExpectedVersion::Any();
    std::vector<storage::EventData> events;
    OrderState state;                  // as loaded
    std::vector<OrderEvent> decided;   // what `events` encode
    CommandContext context;
  };
  std::variant<Plan, Accepted, Rejection, storage::Status> Prepare(const OrderCommand& command,
                                                                   const CommandContext& context,
                                                                   LoadStats* stats = nullptr) const;
  std::optional<Outcome> Finish(const Plan& plan, const storage::AppendResult& appended) const;

  // After the streams of these orders were deleted (forget-customer): drops their cached
  // states and removes their snapshot files (and a leftover .tmp beside each), then syncs
  // the directory. Runs through Options::write_snapshot, after every snapshot write queued
  // before it, so that none of those lands after it; inline when that is empty. `done`
  // gets the outcome, on the thread that ran it. A file that is not there is no failure.
  void ForgetOrders(std::vector<std::string> order_ids, std::function<void(storage::Status)> done) const;
  int max_attempts() const { return options_.max_attempts; }
  // How the cache served loads (hits, misses, evictions) and how many orders it holds.
  OrderCache::Counts cache_counts() const { return cache_.counts(); }
  size_t cached_orders() const { return cache_.size(); }

 private:
  // What `command` wrote to `stream`, for people: the type and fields of its first event.
  std::string DescribeEvents(const std::string& stream, const AppliedCommand& command) const;
  // After an accepted append: the order as it now is goes to the cache, and to a snapshot
  // when it crossed a multiple of snapshot_every.
  void Remember(const std::string& stream, OrderState state, const std::vector<OrderEvent>& events,
                const CommandContext& context, const storage::AppendOk& appended) const;

  storage::Store& store_;
  const Options options_;
  OrderSnapshots snapshots_;
  mutable OrderCache cache_;
  mutable std::atomic<uint64_t> snapshot_load_failures_{0};
};

}  // namespace esd::domain
