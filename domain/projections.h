// The Order read models: one fold of $all, in position order, that answers GetOrder (an
// order's state) and ListOrders (a customer's orders, newest first, paged, optionally by
// status). It remembers how far it got (the checkpoint: the next $all position to apply),
// saves itself as a snapshot, and a restart loads the snapshot and catches up from there.
// A rebuild is a fresh projection caught up from position 0, swapped in when done.
//
// Deleted orders. A delete of an order's stream (soft or hard, storage/lifecycle.h) writes
// "$streamDeleted" to "$$order-<id>"; the projection drops the order when it applies that
// event, live and in catch-up alike. A later "$metadata" event of the stream replaces the
// tombstone in reads but carries on what it removed (truncate_before, hard_deleted): one that
// removes every version the projection folded of the order drops it too. A rebuild never sees
// the deleted order at all: $all returns no removed event, and the tombstone only drops what
// is not there. A soft-deleted order that commands create again comes back from its new
// events only.
//
// Not thread-safe: one owner feeds it and answers from it. A snapshot is taken in two steps
// so that its owner (the daemon's event loop) does not encode every order: CaptureSnapshot
// lists the orders as they are (a pointer each, read front to back from contiguous slots),
// and while a capture is being encoded an order is copied before it changes or is dropped,
// the capture keeping the one it saw (copy on write); EncodeCaptured turns the capture into
// bytes on any thread. Encoding ~50 k orders on the loop took ~80 ms of CPU and stalled
// every client for up to ~200 ms; a capture through the hash map with a reference count per
// order still took ~90 ms at ~300 k orders (docs/performance.md, "Orders").
#pragma once

#include <cstdint>
#include <filesystem>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/order.h"
#include "domain/order_history.h"
#include "storage/sharded_map.h"
#include "storage/store.h"

namespace esd::domain {

class OrderProjection {
 public:
  // Folds one event of $all. Events at positions it already has are ignored (so catching
  // up twice is harmless); events of streams other than "order-<id>" (OrderIdOf) only move
  // the checkpoint; an event there that is not an order event (a ForeignEvent, written
  // before such streams were reserved) is skipped, counted in skipped_events(), and the
  // first one kept in first_skipped(). "$streamDeleted" on "$$order-<id>" drops the order
  // (Drop). The states it keeps are the orders as queries see them: without the recent
  // command ids (OrderState::recent_commands) that only a command's retry needs.
  void Apply(const storage::EventView& e);

  // Applies every durable event from checkpoint() on (at most `max_events`). Returns how
  // many events it read.
  storage::Result<uint64_t> CatchUp(const storage::Store& store, uint64_t max_events = UINT64_MAX);

  uint64_t checkpoint() const { return checkpoint_; }
  uint64_t skipped_events() const { return skipped_; }
  const std::optional<ForeignEvent>& first_skipped() const { return first_skipped_; }
  size_t order_count() const { return orders_.size(); }

  // GetOrder: nullptr when the projection has no such order (yet).
  const OrderState* Get(const std::string& order_id) const;

  struct ListPage {
    std::vector<const OrderState*> orders;
    std::string next_page_token;  // empty: this was the last page
  };
  // ListOrders. `page_token` is "" for the first page, else the previous page's token;
  // nullopt for a token this projection did not make. Orders created after the first
  // page was read appear only on a new first page.
  std::optional<ListPage> List(const std::string& customer_id, std::optional<OrderStatus> status, size_t page_size,
                               const std::string& page_token) const;

  // The ids of every order of the customer, whatever its status, newest first.
  std::vector<std::string> OrdersOf(const std::string& customer_id) const;
  // Forgets the order: GetOrder and ListOrders no longer return it, and snapshots taken from
  // now on do not hold it. False when the projection had no such order. For the tombstone of
  // its stream (Apply) and for a caller that deleted the stream and must not wait for the
  // projection to reach the tombstone (forget-customer).
  bool Drop(const std::string& order_id);

  // Syncs `log` through the checkpoint (SyncLogThrough: under Durability::kInterval or
  // kNever one fdatasync on this thread), then writes the snapshot; writes nothing when the
  // sync fails. `log` is the store this projection was fed from. Capture, then Write.
  storage::Status SaveSnapshot(storage::Store& log, const std::filesystem::path& path) const;

  // SaveSnapshot in steps, for a caller that must not wait on the disk where the projection
  // lives, nor encode every order there (the daemon's event loop): CaptureSnapshot holds the
  // projection as it is now; WriteSnapshot encodes it, syncs the log and writes the bytes,
  // on any thread, while the owner goes on applying events. An order that changes, is
  // dropped, or whose projection is destroyed while a capture of it is alive goes to the
  // capture's `kept` first, so `orders` stay as they were. EncodeCaptured is the bytes alone
  // (what WriteSnapshot writes); EncodeSnapshot captures and encodes at once.
  struct KeptStates {
    std::mutex mu;
    std::vector<std::shared_ptr<const OrderState>> states;
  };
  struct CapturedSnapshot {
    uint64_t checkpoint = 0;
    uint64_t last_timestamp = 0;
    std::vector<const OrderState*> orders;
    std::shared_ptr<KeptStates> kept;  // keeps what `orders` point to that the projection let go
  };
  struct EncodedSnapshot {
    uint64_t checkpoint = 0;
    std::string body;
  };
  CapturedSnapshot CaptureSnapshot() const;
  static EncodedSnapshot EncodeCaptured(const CapturedSnapshot& captured);
  EncodedSnapshot EncodeSnapshot() const { return EncodeCaptured(CaptureSnapshot()); }
  static storage::Status WriteSnapshot(storage::Store& log, const std::filesystem::path& path,
                                       const CapturedSnapshot& captured);
  // The projection in the snapshot at `path`, or an empty one (checkpoint 0) when there is
  // none or it cannot be used: catching up then rebuilds it. It cannot be used when damaged
  // or when `log` does not hold the event before its checkpoint as it was
  // (ProjectionSnapshotMismatch: the snapshot is ahead of the log, or of events it lost).
  // `ignored` (if given) gets why a snapshot that is there is not used, or "": every such
  // failure has its reason (unreadable, damaged, another format, a body that does not
  // decode, ahead of the log), for the daemon to log. A snapshot loads at any size.
  static OrderProjection LoadSnapshot(const storage::Store& log, const std::filesystem::path& path,
                                      std::string* ignored = nullptr);

  bool operator==(const OrderProjection& o) const;

 private:
  // The orders, in slots that a capture reads front to back, with the captures that may
  // still read them. Move only; destroyed or assigned over, it hands every state to the
  // captures still alive.
  class Orders {
   public:
    Orders() = default;
    Orders(Orders&& o) noexcept;
    Orders& operator=(Orders&& o) noexcept;
    ~Orders();

    const OrderState* Find(const std::string& order_id) const;
    // The order to change: made if new; copied first if a live capture holds it.
    OrderState& Mutable(const std::string& order_id);
    // Adds a whole order (from a snapshot) that is not there yet.
    void Insert(OrderState order);
    bool Erase(const std::string& order_id);
    size_t size() const { return index_.size(); }
    CapturedSnapshot Capture(uint64_t checkpoint, uint64_t last_timestamp);
    template <typename F>  // f(const std::string& order_id, const OrderState&)
    void ForEach(F&& f) const {
      index_.ForEach([&](const std::string& id, size_t slot) { f(id, *slots_[slot].state); });
    }

   private:
    // An order's state, and the number of captures taken when it was made: every capture
    // numbered above that has seen it.
    struct Slot {
      std::shared_ptr<OrderState> state;  // nullptr: a dropped order's slot
      uint64_t made_after = 0;
    };
    // Hands `slot`'s state to every live capture that saw it. True if one did.
    bool KeepForCaptures(const Slot& slot);
    void KeepAll();

    std::deque<Slot> slots_;  // in the order the orders were made; never shrinks
    storage::ShardedStringMap<size_t> index_;  // order id -> its slot; sharded: grows on the loop
    uint64_t captures_ = 0;
    std::vector<std::pair<uint64_t, std::weak_ptr<KeptStates>>> live_;  // (capture number, its kept)
  };

  void Index(const OrderState& order);
  // An event of "$$order-<id>" (the order stream's metadata).
  void ApplyMetadata(const std::string& order_id, const storage::EventView& e);

  // Mutable: CaptureSnapshot, const for its callers, registers the capture here.
  mutable Orders orders_;
  // Per customer, sorted newest first: (UINT64_MAX - created_at, order id).
  std::map<std::string, std::set<std::pair<uint64_t, std::string>>> by_customer_;
  uint64_t checkpoint_ = 0;
  uint64_t last_timestamp_ = 0;  // commit time of the event at checkpoint_ - 1
  uint64_t skipped_ = 0;
  std::optional<ForeignEvent> first_skipped_;
  // CatchUp reads the log through this (pread), not the mapping: the events it folds were
  // just written, and a first touch of fresh mapped pages was the costliest part of its scan
  // in the VM this was measured on (docs/performance.md). Reused from call to call.
  std::unique_ptr<storage::ReadBuffer> read_buffer_ = std::make_unique<storage::ReadBuffer>(1u << 20);
};

}  // namespace esd::domain
