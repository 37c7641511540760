// Reading an order's past: its audit trail (every event with time, position, version and
// metadata), and time travel (the order as it was after version V, or at time T). As of a
// time, the version is found by binary search over the stream's commit timestamps, which
// never decrease along the log: O(log events) reads, never a scan.
//
// Only what reads return counts: the events of a deleted order (soft or hard,
// storage/lifecycle.h) are gone, so its history is empty and it is not found as of any
// version or time; an order created again after a soft delete has the history of its new
// events only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/order.h"
#include "storage/store.h"

namespace esd::domain {

// An event in an order's stream that is not an order event (DecodeStoredEvent): appended
// there directly before such streams were reserved for the Order service
// (RawAppendRefusal), or by another writer. Its bytes verify: it is not damage, but no
// command can decide on the order, whose state it is not part of.
struct ForeignEvent {
  std::string stream;
  uint64_t version = 0, position = 0;
  std::string type, content_type;
  // "stream 'order-1' holds at version 0 (position 0) an event of type 'OrderCreated'
  // (application/json) that is not an Order service event"
  std::string Describe() const;
};
ForeignEvent ForeignEventOf(const storage::EventView& e);

// What to do with a ForeignEvent in an order's stream: refuse it (a command must not decide
// on a state it is not part of) or leave it out (a query shows the order as the Order
// service's own events make it, as the projection does).
enum class OnForeign { kRefuse, kSkip };

// Calls `visit` for each event of the order with from <= version <= to, in order. An event
// that is not an order event: kRefuse returns kInvalidArgument naming it (with the
// position; not kCorruption: its bytes verify), kSkip leaves it out; either way `foreign`
// (if given) says which was the first. A stream with no event left (kNotFound) or
// hard-deleted (kStreamDeleted) has none to visit: Ok.
storage::Status ForEachOrderEvent(const storage::Store& store, const std::string& order_id, uint64_t from,
                                  uint64_t to, const std::function<void(RecordedOrderEvent&&)>& visit,
                                  std::optional<ForeignEvent>* foreign = nullptr,
                                  OnForeign on_foreign = OnForeign::kRefuse);

class OrderHistory {
 public:
  explicit OrderHistory(const storage::Store& store) : store_(store) {}

  // Every event of the order; empty when it does not exist.
  storage::Result<std::vector<RecordedOrderEvent>> Events(const std::string& order_id) const;
  // The state after version `version` (the whole order if it has fewer events). Events that
  // are not order events are left out, as the projection leaves them out.
  storage::Result<OrderState> AsOfVersion(const std::string& order_id, uint64_t version) const;
  // The state including every event committed at or before `micros`; status kNone if the
  // order did not exist yet. Foreign events are left out, as above.
  storage::Result<OrderState> AsOfTime(const std::string& order_id, uint64_t micros) const;

 private:
  const storage::Store& store_;
};

}  // namespace esd::domain
