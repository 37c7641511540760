// The Order aggregate: its events, its commands, the state the events fold into, and the
// decision of a command into events or a named rejection. Pure functions: no I/O, no
// clock (the caller passes `now`), so every rule is tested without a store.
//
// Rules, each with the name a caller sees when it rejects a command:
//   order-already-exists      CreateOrder on an order that exists
//   order-not-found           any other command on an order that does not exist
//   order-not-open            AddItem, RemoveItem or PlaceOrder on a placed or cancelled order
//   quantity-out-of-range     a quantity outside 1..10,000 (also a line over 10,000 in all)
//   price-out-of-range        a unit price below 0 or above 10^11 cents
//   price-mismatch            AddItem of a SKU already in the order at another price
//   too-many-lines            AddItem of a new SKU to an order of 1,000 lines; PlaceOrder of an
//                             order whose total does not fit in int64 (only events from before
//                             the cap, or another writer's, make one)
//   item-not-in-order         RemoveItem of a SKU the order does not hold
//   remove-more-than-present  RemoveItem of more units than the line holds
//   order-empty               PlaceOrder of an order without lines
//   order-already-cancelled   CancelOrder of a cancelled order
//   invalid-argument          an empty order id, customer id or SKU
//   foreign-event             any command on an order whose stream holds an event that is not
//                             an order event (OrderCommands::Prepare; see ForeignEvent)
//   order-deleted             CreateOrder on an order whose stream was hard-deleted: it takes
//                             no event again (OrderCommands::Prepare; other commands on it
//                             get order-not-found, as for an order that never existed)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace esd::domain {

inline constexpr uint32_t kMaxQuantity = 10'000;        // units per line
inline constexpr int64_t kMaxUnitPriceCents = 100'000'000'000;
inline constexpr uint32_t kMaxLines = 1'000;            // lines (SKUs) per order
// A line is worth at most 10^4 x 10^11 = 10^15 cents, so without a cap on lines about 9,223
// maximal lines overflow a total. With it, the largest total is 10^18 cents, under INT64_MAX
// (9.2 x 10^18), and the largest item count 10^7. Apply clamps what other writers' events
// would take further (see Apply).
static_assert(int64_t{kMaxLines} * kMaxQuantity <= INT64_MAX / kMaxUnitPriceCents,
              "the largest order's total must fit in int64");
static_assert(uint64_t{kMaxLines} * kMaxQuantity <= UINT32_MAX, "the largest item count must fit in uint32");

// ---- events ----
struct OrderCreated {
  std::string order_id;
  std::string customer_id;
  uint64_t created_at = 0;  // micros
  bool operator==(const OrderCreated&) const = default;
};
struct ItemAdded {
  std::string sku;
  uint32_t quantity = 0;
  int64_t unit_price_cents = 0;
  bool operator==(const ItemAdded&) const = default;
};
struct ItemRemoved {
  std::string sku;
  uint32_t quantity = 0;
  bool operator==(const ItemRemoved&) const = default;
};
struct OrderPlaced {
  int64_t total_cents = 0;
  uint32_t item_count = 0;
  bool operator==(const OrderPlaced&) const = default;
};
struct OrderCancelled {
  std::string reason;
  bool operator==(const OrderCancelled&) const = default;
};
using OrderEvent = std::variant<OrderCreated, ItemAdded, ItemRemoved, OrderPlaced, OrderCancelled>;
const char* EventTypeName(const OrderEvent& e);  // "OrderCreated", ...

// Who asked, in which flow, and which command; stored as each event's metadata.
struct CommandContext {
  std::string command_id;      // unique per command; a retry carries the same id
  std::string correlation_id;
  std::string caused_by;
  // What the command was (CommandFingerprint in domain/order_commands.h), so that a command
  // id used again for another command is told apart from a retry. OrderCommands sets it;
  // 0 in events written before it existed.
  uint64_t command_fingerprint = 0;
  bool operator==(const CommandContext&) const = default;
};

// An event as read back from its stream.
struct RecordedOrderEvent {
  OrderEvent event;
  CommandContext context;
  uint64_t version = 0;
  uint64_t position = 0;
  uint64_t timestamp = 0;  // commit time, micros
};

// ---- commands ----
struct CreateOrder {
  std::string order_id;
  std::string customer_id;
};
struct AddItem {
  std::string order_id;
  std::string sku;
  uint32_t quantity = 0;
  int64_t unit_price_cents = 0;
};
struct RemoveItem {
  std::string order_id;
  std::string sku;
  std::optional<uint32_t> quantity;  // nullopt: the whole line
};
struct PlaceOrder {
  std::string order_id;
};
struct CancelOrder {
  std::string order_id;
  std::string reason;
};
using OrderCommand = std::variant<CreateOrder, AddItem, RemoveItem, PlaceOrder, CancelOrder>;
const std::string& CommandOrderId(const OrderCommand& c);

// ---- state ----
enum class OrderStatus : uint8_t { kNone, kOpen, kPlaced, kCancelled };
const char* StatusName(OrderStatus s);  // "none", "open", "placed", "cancelled"

struct OrderLine {
  std::string sku;
  uint32_t quantity = 0;
  int64_t unit_price_cents = 0;
  bool operator==(const OrderLine&) const = default;
};

struct AppliedCommand {
  std::string command_id;
  uint64_t first_version = 0, last_version = 0, last_position = 0;
  uint64_t fingerprint = 0;  // the command's (CommandContext::command_fingerprint); 0: unknown
  bool operator==(const AppliedCommand&) const = default;
};

struct OrderState {
  std::string order_id;
  std::string customer_id;
  OrderStatus status = OrderStatus::kNone;
  std::vector<OrderLine> lines;  // in the order their SKUs were first added
  int64_t total_cents = 0;  // the sum over lines (clamped, see Apply)
  std::optional<uint64_t> version;  // of the last event folded in; nullopt: no event
  uint64_t last_position = 0;
  uint64_t last_timestamp = 0;  // commit time of the last event folded in, micros
  uint64_t created_at = 0, placed_at = 0, cancelled_at = 0;
  std::string cancel_reason;
  // The last kRecentCommands commands, so a retried command is answered with its original
  // result instead of being decided again.
  std::vector<AppliedCommand> recent_commands;
  static constexpr size_t kRecentCommands = 32;

  uint32_t ItemCount() const;
  const AppliedCommand* FindCommand(const std::string& command_id) const;
  bool operator==(const OrderState&) const = default;
};

// Folds one recorded event into `state`. Events must come in version order. Events that
// Decide would not have made (an esd before the line cap, another writer) are folded too,
// without overflow: a line's quantity stops at UINT32_MAX, and total_cents is the sum over
// the lines clamped to [INT64_MIN, INT64_MAX], exact again once the lines fit.
void Apply(OrderState& state, const RecordedOrderEvent& e);

struct Rejection {
  std::string rule;     // one of the names above
  std::string message;  // for people
};

// The events `command` produces on `state`, or the rule it breaks. `now` stamps
// OrderCreated.created_at.
std::variant<std::vector<OrderEvent>, Rejection> Decide(const OrderState& state, const OrderCommand& command,
                                                        uint64_t now);

}  // namespace esd::domain
