// Forgetting a customer (issue 13, GDPR): what stays behind is an audit record of the
// erasure, an event of the system stream "$erasures" (Store::AppendSystem) of type
// CustomerForgotten, whose data is JSON:
//
//   {"atMicros":1764892800000000,"role":"admin","streamsDeleted":3}
//
// when it was done (the daemon's clock, micros since the epoch), the role of the session
// that asked, and how many order streams were hard-deleted. Nothing else: no customer id, no
// order id, nothing of what was erased, so that the record itself holds no personal data and
// may stay for good. Forgetting a customer again (or one without orders) writes a record
// with 0 streams: the request itself is what the audit trail keeps.
//
// The procedure (the daemon's OrderService.forgetCustomer, docs/domain.md "Forgetting a
// customer") runs on the event loop; this file holds what it writes, so that it is written
// and read back in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace esd::domain {

inline constexpr std::string_view kErasureStream = "$erasures";
inline constexpr std::string_view kCustomerForgottenType = "CustomerForgotten";
inline constexpr std::string_view kErasureContentType = "application/json";

struct CustomerForgotten {
  uint64_t at_micros = 0;
  std::string role;  // "reader", "writer" or "admin": who asked, never who was forgotten
  uint64_t streams_deleted = 0;
  bool operator==(const CustomerForgotten&) const = default;
};

// Hard-deletes the streams of these orders (ExpectedVersion::Any), all in one go (the writer
// takes them in one group commit), and waits for every answer: not from an append callback.
// `deleted`: how many this call deleted; a stream already hard-deleted, or one with no event
// left, counts as done (in `gone`) but not as deleted by it. `failure`: the first other outcome (out of
// space, an I/O error), Ok when none; what was deleted stays deleted either way.
struct HardDeleted {
  uint64_t deleted = 0;
  std::vector<std::string> gone;  // the orders whose streams are hard-deleted or empty now
  storage::Status failure = storage::Status::Ok();
};
HardDeleted HardDeleteOrders(storage::Store& store, const std::vector<std::string>& order_ids);

// Appends the record to kErasureStream (Store::AppendSystem) and waits until it is durable:
// not from an append callback.
storage::AppendResult AppendErasureAudit(storage::Store& store, const CustomerForgotten& record);

// The audit event (a random event id: every request is recorded, a retry too).
storage::EventData EncodeCustomerForgotten(const CustomerForgotten& record);
// nullopt when `data` is not such a record.
std::optional<CustomerForgotten> DecodeCustomerForgotten(std::string_view data);

}  // namespace esd::domain
