// Reading an order's past: its audit trail (every event with time, position, version and
// metadata), and time travel (the order as it was after version V, or at time T). As of a
// time, the version is found by binary search over the stream's commit timestamps, which
// never decrease along the log: O(log events) reads, never a scan.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "domain/order.h"
#include "storage/store.h"

namespace esd::domain {

// Calls `visit` for each event of the order with from <= version <= to, in order.
// kCorruption (with the position) for an event that is not an order event.
storage::Status ForEachOrderEvent(const storage::Store& store, const std::string& order_id, uint64_t from,
                                  uint64_t to, const std::function<void(RecordedOrderEvent&&)>& visit);

class OrderHistory {
 public:
  explicit OrderHistory(const storage::Store& store) : store_(store) {}

  // Every event of the order; empty when it does not exist.
  storage::Result<std::vector<RecordedOrderEvent>> Events(const std::string& order_id) const;
  // The state after version `version` (the whole order if it has fewer events).
  storage::Result<OrderState> AsOfVersion(const std::string& order_id, uint64_t version) const;
  // The state including every event committed at or before `micros`; status kNone if the
  // order did not exist yet.
  storage::Result<OrderState> AsOfTime(const std::string& order_id, uint64_t micros) const;

 private:
  const storage::Store& store_;
};

}  // namespace esd::domain
