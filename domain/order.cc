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
  uint32_t n = 0;
  for (const auto& l : lines) n += l.quantity;
  return n;
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
                   // always equals the sum over lines, even for an event from another writer.
                   OrderLine* line = FindLine(s.lines, e.sku);
                   if (line != nullptr) {
                     line->quantity += e.quantity;
                   } else {
                     s.lines.push_back({e.sku, e.quantity, e.unit_price_cents});
                     line = &s.lines.back();
                   }
                   s.total_cents += static_cast<int64_t>(e.quantity) * line->unit_price_cents;
                 },
                 [&](const ItemRemoved& e) {
                   OrderLine* line = FindLine(s.lines, e.sku);
                   if (line == nullptr) return;  // Decide never produces this; tolerate a foreign writer
                   const uint32_t q = std::min(e.quantity, line->quantity);
                   s.total_cents -= static_cast<int64_t>(q) * line->unit_price_cents;
                   line->quantity -= q;
                   if (line->quantity == 0) {
                     s.lines.erase(s.lines.begin() + (line - s.lines.data()));
                   }
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
            if (const OrderLine* line = FindLine(s.lines, c.sku)) {
              if (line->unit_price_cents != c.unit_price_cents) {
                return Reject("price-mismatch", "SKU '" + c.sku + "' is in the order at " +
                                                    std::to_string(line->unit_price_cents) + " cents, not " +
                                                    std::to_string(c.unit_price_cents));
              }
              if (line->quantity + c.quantity > kMaxQuantity) {
                return Reject("quantity-out-of-range", "SKU '" + c.sku + "' would reach " +
                                                           std::to_string(line->quantity + c.quantity) +
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
