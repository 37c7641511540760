// Order events to and from the bytes stored in the log: the data is the event's Cap'n
// Proto struct (protocol/orders.capnp) as one flat message, the metadata an EventMetadata.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "domain/order.h"

namespace esd::domain {

inline constexpr std::string_view kOrderContentType = "application/x-capnp; schema=orders";

struct EncodedEvent {
  std::string type;  // the struct's name
  std::string data;
  std::string metadata;
};

EncodedEvent Encode(const OrderEvent& event, const CommandContext& context);

// nullopt when `type` is not an order event or the bytes do not decode.
std::optional<OrderEvent> DecodeEvent(std::string_view type, std::string_view data);
// An event as stored in an order's stream: an order event only with kOrderContentType (every
// event the service wrote has it), so that bytes of another kind that happen to decode are
// never folded in. nullopt for anything else: a foreign event.
std::optional<OrderEvent> DecodeStoredEvent(std::string_view content_type, std::string_view type,
                                            std::string_view data);
// Empty fields when the bytes do not decode (metadata is informative, never trusted).
CommandContext DecodeMetadata(std::string_view metadata);

// The event's fields as JSON, through capnp's JSON codec; nullopt when it does not decode.
std::optional<std::string> EventToJson(std::string_view type, std::string_view data);

}  // namespace esd::domain
