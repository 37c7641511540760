#include "domain/order.h"

#include <algorithm>

namespace esd::domain {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};

Rejection Reject(std::string rule, std::string message) { return {std::move(rule), std::move(message)}; }

OrderLine* FindLine(std::vector<OrderLine>& lines, const std::string& sku) {
  auto it = std::find_if(lines.begin(), lines.end(), [&](const OrderLine& l) { return l.sku == sku; });
  return it == lines.end() ? nullptr : &*it;
}

const OrderLine* FindLine(const std::vector<OrderLine>& lines, const std::string& sku) {
  return FindLine(const_cast<std::vector<OrderLine>&>(lines), sku);
}

// The sum over the lines, clamped to the range of int64: exact whenever it fits, which it
// always does for the lines Decide allows (see kMaxLines). 128 bits hold any line
// (< 2^32 x 2^63) and the sum of far more lines than an order can have.
int64_t ClampedTotal(const std::vector<OrderLine>& lines) {
  __int128 sum = 0;
  for (const auto& l : lines) sum += static_cast<__int128>(l.quantity) * l.unit_price_cents;
  return sum > INT64_MAX ? INT64_MAX : sum < INT64_MIN ? INT64_MIN : static_cast<int64_t>(sum);
}

bool IsClamped(int64_t total) { return total == INT64_MAX || total == INT64_MIN; }

// Moves the total by `quantity` units at `price` (the lines already changed): in O(1) while
// the arithmetic stays in range, else from the lines, clamped. A clamped total is summed
// again on every change, so it becomes exact as soon as the lines fit again.
void MoveTotal(OrderState& s, int64_t quantity, int64_t price) {
  int64_t change = 0, total = 0;
  if (IsClamped(s.total_cents) || __builtin_mul_overflow(quantity, price, &change) ||
      __builtin_add_overflow(s.total_cents, change, &total)) {
    s.total_cents = ClampedTotal(s.lines);
  } else {
    s.total_cents = total;
  }
}

std::optional<Rejection> RequireExisting(const OrderState& s, const std::string& id) {
  if (s.status == OrderStatus::kNone) return Reject("order-not-found", "order '" + id + "' does not exist");
  return std::nullopt;
}

std::optional<Rejection> RequireOpen(const OrderState& s, const std::string& id) {
  if (auto r = RequireExisting(s, id)) return r;
  if (s.status != OrderStatus::kOpen) {
    return Reject("order-not-open", "order '" + id + "' is " + StatusName(s.status) + ", not open");
  }
  return std::nullopt;
}

std::optional<Rejection> CheckQuantity(uint32_t q) {
  if (q < 1 || q > kMaxQuantity) {
    return Reject("quantity-out-of-range",
                  "quantity must be 1.." + std::to_string(kMaxQuantity) + ", got " + std::to_string(q));
  }
  return std::nullopt;
}

}  // namespace

const char* EventTypeName(const OrderEvent& e) {
  static const char* const kNames[] = {"OrderCreated", "ItemAdded", "ItemRemoved", "OrderPlaced", "OrderCancelled"};
  return kNames[e.index()];
}

const std::string& CommandOrderId(const OrderCommand& c) {
  return std::visit([](const auto& cmd) -> const std::string& { return cmd.order_id; }, c);
}

const char* StatusName(OrderStatus s) {
  switch (s) {
    case OrderStatus::kNone: return "none";
    case OrderStatus::kOpen: return "open";
    case OrderStatus::kPlaced: return "placed";
    case OrderStatus::kCancelled: return "cancelled";
  }
  return "?";
}

uint32_t OrderState::ItemCount() const {
  uint64_t n = 0;  // < 2^32 lines of < 2^32 units each
  for (const auto& l : lines) n += l.quantity;
  return static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX));
}

const AppliedCommand* OrderState::FindCommand(const std::string& command_id) const {
  if (command_id.empty()) return nullptr;
  for (const auto& c : recent_commands) {
    if (c.command_id == command_id) return &c;
  }
  return nullptr;
}

void Apply(OrderState& s, const RecordedOrderEvent& r) {
  std::visit(Overloaded{
                 [&](const OrderCreated& e) {
                   s.order_id = e.order_id;
                   s.customer_id = e.customer_id;
                   s.status = OrderStatus::kOpen;
                   s.created_at = e.created_at;
                 },
                 [&](const ItemAdded& e) {
                   // A line keeps its first price (Decide allows no other), so the total
                   // is the sum over lines, even for an event from another writer. Events
                   // Decide did not make (an older esd's, another writer's) may leave every
                   // range: the quantity stops at its maximum and the total is clamped
                   // (MoveTotal), never overflowed.
                   OrderLine* line = FindLine(s.lines, e.sku);
                   uint32_t added = e.quantity;
                   if (line != nullptr) {
                     added = std::min(e.quantity, UINT32_MAX - line->quantity);
                     line->quantity += added;
                   } else {
                     s.lines.push_back({e.sku, e.quantity, e.unit_price_cents});
                     line = &s.lines.back();
                   }
                   MoveTotal(s, added, line->unit_price_cents);
                 },
                 [&](const ItemRemoved& e) {
                   OrderLine* line = FindLine(s.lines, e.sku);
                   if (line == nullptr) return;  // Decide never produces this; tolerate a foreign writer
                   const uint32_t q = std::min(e.quantity, line->quantity);
                   const int64_t price = line->unit_price_cents;
                   line->quantity -= q;
                   if (line->quantity == 0) {
                     s.lines.erase(s.lines.begin() + (line - s.lines.data()));
                   }
                   MoveTotal(s, -static_cast<int64_t>(q), price);
                 },
                 [&](const OrderPlaced&) {
                   s.status = OrderStatus::kPlaced;
                   s.placed_at = r.timestamp;
                 },
                 [&](const OrderCancelled& e) {
                   s.status = OrderStatus::kCancelled;
                   s.cancelled_at = r.timestamp;
                   s.cancel_reason = e.reason;
                 },
             },
             r.event);
  s.version = r.version;
  s.last_position = r.position;
  s.last_timestamp = r.timestamp;
  // One command's events are consecutive: extend its entry, or start a new one.
  if (!r.context.command_id.empty()) {
    if (!s.recent_commands.empty() && s.recent_commands.back().command_id == r.context.command_id) {
      s.recent_commands.back().last_version = r.version;
      s.recent_commands.back().last_position = r.position;
    } else {
      s.recent_commands.push_back(
          {r.context.command_id, r.version, r.version, r.position, r.context.command_fingerprint});
      if (s.recent_commands.size() > OrderState::kRecentCommands) s.recent_commands.erase(s.recent_commands.begin());
    }
  }
}

std::variant<std::vector<OrderEvent>, Rejection> Decide(const OrderState& s, const OrderCommand& command,
                                                        uint64_t now) {
  using Out = std::variant<std::vector<OrderEvent>, Rejection>;
  if (CommandOrderId(command).empty()) return Reject("invalid-argument", "the order id must not be empty");
  return std::visit(
      Overloaded{
          [&](const CreateOrder& c) -> Out {
            if (s.status != OrderStatus::kNone) {
              return Reject("order-already-exists", "order '" + c.order_id + "' already exists");
            }
            if (c.customer_id.empty()) return Reject("invalid-argument", "the customer id must not be empty");
            return std::vector<OrderEvent>{OrderCreated{c.order_id, c.customer_id, now}};
          },
          [&](const AddItem& c) -> Out {
            if (auto r = RequireOpen(s, c.order_id)) return *r;
            if (c.sku.empty()) return Reject("invalid-argument", "the SKU must not be empty");
            if (auto r = CheckQuantity(c.quantity)) return *r;
            if (c.unit_price_cents < 0 || c.unit_price_cents > kMaxUnitPriceCents) {
              return Reject("price-out-of-range", "the unit price must be 0.." + std::to_string(kMaxUnitPriceCents) +
                                                      " cents, got " + std::to_string(c.unit_price_cents));
            }
            const OrderLine* line = FindLine(s.lines, c.sku);
            if (line == nullptr && s.lines.size() >= kMaxLines) {
              return Reject("too-many-lines", "order '" + c.order_id + "' has " + std::to_string(s.lines.size()) +
                                                  " lines, the most an order may have; add to a SKU it holds, or " +
                                                  "remove a line first");
            }
            if (line != nullptr) {
              if (line->unit_price_cents != c.unit_price_cents) {
                return Reject("price-mismatch", "SKU '" + c.sku + "' is in the order at " +
                                                    std::to_string(line->unit_price_cents) + " cents, not " +
                                                    std::to_string(c.unit_price_cents));
              }
              // In 64 bits: a line another writer made may hold up to UINT32_MAX units.
              if (uint64_t{line->quantity} + c.quantity > kMaxQuantity) {
                return Reject("quantity-out-of-range", "SKU '" + c.sku + "' would reach " +
                                                           std::to_string(uint64_t{line->quantity} + c.quantity) +
                                                           " units, over " + std::to_string(kMaxQuantity));
              }
            }
            return std::vector<OrderEvent>{ItemAdded{c.sku, c.quantity, c.unit_price_cents}};
          },
          [&](const RemoveItem& c) -> Out {
            if (auto r = RequireOpen(s, c.order_id)) return *r;
            if (c.sku.empty()) return Reject("invalid-argument", "the SKU must not be empty");
            const OrderLine* line = FindLine(s.lines, c.sku);
            if (line == nullptr) return Reject("item-not-in-order", "SKU '" + c.sku + "' is not in the order");
            const uint32_t q = c.quantity.value_or(line->quantity);
            if (auto r = CheckQuantity(q)) return *r;
            if (q > line->quantity) {
              return Reject("remove-more-than-present", "the order holds " + std::to_string(line->quantity) +
                                                            " of SKU '" + c.sku + "', not " + std::to_string(q));
            }
            return std::vector<OrderEvent>{ItemRemoved{c.sku, q}};
          },
          [&](const PlaceOrder& c) -> Out {
            if (auto r = RequireOpen(s, c.order_id)) return *r;
            if (s.lines.empty()) return Reject("order-empty", "order '" + c.order_id + "' has no lines to place");
            if (IsClamped(s.total_cents)) {  // only lines from before the cap, or another writer's, get here
              return Reject("too-many-lines", "the total of order '" + c.order_id + "' over its " +
                                                  std::to_string(s.lines.size()) +
                                                  " lines does not fit in 64-bit cents; remove lines to place it");
            }
            return std::vector<OrderEvent>{OrderPlaced{s.total_cents, s.ItemCount()}};
          },
          [&](const CancelOrder& c) -> Out {
            if (auto r = RequireExisting(s, c.order_id)) return *r;
            if (s.status == OrderStatus::kCancelled) {
              return Reject("order-already-cancelled", "order '" + c.order_id + "' was already cancelled");
            }
            return std::vector<OrderEvent>{OrderCancelled{c.reason}};
          },
      },
      command);
}

}  // namespace esd::domain
