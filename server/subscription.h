// A catch-up subscription. One cursor walks the log: it pushes what is already durable in
// batches (flow-controlled by the `-> stream` method, so a slow subscriber only slows
// itself), says "caught up" once it reaches the durable position, and from then on waits
// for the writer to move that position and pushes what is new. Catch-up and live are the
// same loop over the same cursor, so nothing is skipped or sent twice at the switch.
#pragma once

#include "protocol/esd.capnp.h"
#include "server/context.h"

namespace esd::server {

// Starts pushing to `subscriber` at once, as records when `records` (protocol/esd.capnp,
// Subscriber.events). Dropping the returned capability, calling its cancel(), or losing the
// connection ends the subscription.
rpc::Subscription::Client StartSubscription(ServerContext& ctx, rpc::SubscribeFrom::Reader from,
                                            EventFilter filter, rpc::Subscriber::Client subscriber,
                                            bool records = false);

}  // namespace esd::server
