#include "domain/order_cache.h"

namespace esd::domain {

std::optional<OrderState> OrderCache::Get(const std::string& order_id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(order_id);
  if (it == index_.end()) {
    ++counts_.misses;
    return std::nullopt;
  }
  ++counts_.hits;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->state;
}

void OrderCache::Put(const std::string& order_id, OrderState state) {
  if (capacity_ == 0 || !state.version) return;
  std::lock_guard lock(mu_);
  auto it = index_.find(order_id);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    OrderState& kept = it->second->state;
    if (!kept.version || *kept.version < *state.version) kept = std::move(state);
    return;
  }
  lru_.push_front(Entry{order_id, std::move(state)});
  index_.emplace(order_id, lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().order_id);
    lru_.pop_back();
    ++counts_.evictions;
  }
}

void OrderCache::Erase(const std::string& order_id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(order_id);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

size_t OrderCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

OrderCache::Counts OrderCache::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

}  // namespace esd::domain
