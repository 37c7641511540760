// Orders as last loaded or written, so that a command on an order that was just loaded or
// changed costs no read of its stream (OrderCommands::Load).
//
// An entry is a state at a version of its stream; it says nothing of whether the stream is
// still there. The caller checks the stream's version before it uses one (the store's
// GetStreamInfo, O(1)): equal, it is the order; behind, only the events after it are read
// and folded. An entry never moves back: Put keeps the entry with the higher version.
//
// Bounded by count: at most `capacity` orders, the least recently used one evicted first.
// An order's state is its lines and its last 32 command ids (OrderState), so about 1 to
// 4 KiB for a usual order: 10,000 orders (the daemon's default) are 10 to 40 MiB.
// Any thread: every call takes one mutex.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "domain/order.h"

namespace esd::domain {

class OrderCache {
 public:
  // capacity 0: nothing is kept.
  explicit OrderCache(size_t capacity) : capacity_(capacity) {}
  OrderCache(const OrderCache&) = delete;
  OrderCache& operator=(const OrderCache&) = delete;

  // A copy of the order's entry (now the most recently used), or nullopt.
  std::optional<OrderState> Get(const std::string& order_id);
  // Keeps `state` (which has a version) for the order, unless the entry there has a higher
  // version; evicts the least recently used order past the capacity.
  void Put(const std::string& order_id, OrderState state);
  void Erase(const std::string& order_id);

  size_t size() const;
  size_t capacity() const { return capacity_; }
  struct Counts {
    uint64_t hits = 0, misses = 0, evictions = 0;
  };
  Counts counts() const;

 private:
  struct Entry {
    std::string order_id;
    OrderState state;
  };
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  Counts counts_;
};

}  // namespace esd::domain
