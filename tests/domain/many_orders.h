// A projection's worth of orders built directly, not through the log: snapshots of the sizes
// that once failed (capnp's default 64 MiB traversal limit on load, readSnapshot's 48 MiB
// cap) are then made in a second, and still go through the daemon's own load path.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "domain/order.h"
#include "domain/snapshots.h"
#include "storage/store.h"

namespace esd::domain::testing {

// `n` placed orders of 3 lines and 5 recent commands each, about as large as the daemon's
// (~600 bytes in a snapshot). Order i is "m<i>", of customer "customer-<i % 1000>".
inline std::vector<OrderState> ManyOrders(size_t n) {
  std::vector<OrderState> orders(n);
  for (size_t i = 0; i < n; ++i) {
    OrderState& o = orders[i];
    // Appended rather than "m" + std::to_string(i): that trips g++ 12's -Wrestrict false
    // positive (GCC bug 105329).
    o.order_id = "m";
    o.order_id += std::to_string(i);
    o.customer_id = "customer-";
    o.customer_id += std::to_string(i % 1000);
    o.status = OrderStatus::kPlaced;
    for (size_t l = 0; l < 3; ++l) {
      std::string sku = "sku-";
      sku += std::to_string(l * 7 + i % 5);
      o.lines.push_back({std::move(sku), 2, 1250});
    }
    o.total_cents = 3 * 2 * 1250;
    o.version = 4;
    o.last_position = 0;
    o.created_at = 1'700'000'000'000'000 + i;
    o.placed_at = o.created_at + 1;
    for (uint64_t c = 0; c < 5; ++c) {
      char id[48];  // 36 for a UUID; room for an i past 32 bits
      std::snprintf(id, sizeof(id), "%08zx-0000-4000-8000-%012llx", i, static_cast<unsigned long long>(c));
      o.recent_commands.push_back({id, c, c, 0});
    }
  }
  return orders;
}

// A projection snapshot's body holding `orders`, at `checkpoint` (the event before it
// committed at `last_timestamp`).
inline std::string EncodeProjectionOf(uint64_t checkpoint, uint64_t last_timestamp,
                                      const std::vector<OrderState>& orders) {
  std::vector<const OrderState*> states;
  states.reserve(orders.size());
  for (const auto& o : orders) states.push_back(&o);
  return EncodeProjection(checkpoint, last_timestamp, states);
}

// The projection snapshot of `orders` at `path`, covering $all of `log` up to its durable
// position, which must be at least 1 (the snapshot records its last event's commit time, as
// the daemon's does, so that a load uses it).
inline storage::Status WriteProjectionSnapshotOf(const storage::Store& log, const std::vector<OrderState>& orders,
                                                 const std::filesystem::path& path) {
  const uint64_t checkpoint = log.DurablePosition().value;
  uint64_t last_timestamp = 0;
  auto read = log.ReadAll(storage::GlobalPosition(checkpoint - 1), 1, [&](const storage::EventView& e) {
    last_timestamp = e.timestamp;
    return false;
  });
  if (!read.ok()) return read.status();
  return WriteSnapshotFile(path, checkpoint, EncodeProjectionOf(checkpoint, last_timestamp, orders));
}

}  // namespace esd::domain::testing
