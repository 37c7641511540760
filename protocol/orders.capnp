# The Order service's events, as stored in the stream "order-<orderId>": each event's type
# is the name of its struct here, its content type "application/x-capnp; schema=orders",
# its data that struct as a single-segment, unpacked Cap'n Proto message, and its
# metadata an EventMetadata message. Amounts are integer cents.
@0xc0b6507e569aa260;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("esd::orders");

struct OrderCreated {
  orderId @0 :Text;
  customerId @1 :Text;
  createdAt @2 :UInt64;        # microseconds since the Unix epoch, when the command was decided
}

struct ItemAdded {
  sku @0 :Text;
  quantity @1 :UInt32;         # 1..10,000
  unitPriceCents @2 :Int64;    # >= 0; one price per SKU in an order
}

struct ItemRemoved {
  sku @0 :Text;
  quantity @1 :UInt32;         # 1..what the line holds
}

struct OrderPlaced {
  totalCents @0 :Int64;
  itemCount @1 :UInt32;        # units over all lines
}

struct OrderCancelled {
  reason @0 :Text;
}

struct EventMetadata {
  commandId @0 :Text;          # the command that produced the event; its ids derive from it
  correlationId @1 :Text;      # the business flow it belongs to
  causedBy @2 :Text;           # who asked: a user, a token's role, a service
  commandFingerprint @3 :UInt64;
  # What the command was: XXH3-64 of its kind and fields (domain::CommandFingerprint), so a
  # command id used again for another command is refused instead of answered as a retry.
  # 0 in events written before it existed: such a command is known by its id alone.
}

# An aggregate snapshot: the Order's state after `version`, so that loading reads only the
# events after it. Stored in DATA/snapshots/orders/ behind a checksummed header (see
# domain/snapshots.h); a snapshot of another format version is ignored, never misread.
struct OrderSnapshot {
  orderId @0 :Text;
  customerId @1 :Text;
  status @2 :Status;
  lines @3 :List(Line);
  totalCents @4 :Int64;
  version @5 :UInt64;
  lastPosition @6 :UInt64;
  createdAt @7 :UInt64;
  placedAt @8 :UInt64;
  cancelledAt @9 :UInt64;
  cancelReason @10 :Text;
  recentCommands @11 :List(AppliedCommand);
  lastTimestamp @12 :UInt64;
  # Commit time of the event at `version` (at `lastPosition`): with the position, what a load
  # checks against the log, so a snapshot of events the log lost is never used. 0 in a
  # snapshot written before this field existed: such a snapshot is not used.

  enum Status {
    none @0;
    open @1;
    placed @2;
    cancelled @3;
  }
  struct Line {
    sku @0 :Text;
    quantity @1 :UInt32;
    unitPriceCents @2 :Int64;
  }
  struct AppliedCommand {
    commandId @0 :Text;
    firstVersion @1 :UInt64;
    lastVersion @2 :UInt64;
    lastPosition @3 :UInt64;
    fingerprint @4 :UInt64;    # EventMetadata.commandFingerprint; 0: not known (an older
                               # snapshot, or events from before fingerprints)
  }
}

# A projection's snapshot: every order it knows, and the $all position it has applied up
# to (exclusive). A restart loads it and catches up from `checkpoint`.
struct ProjectionSnapshot {
  checkpoint @0 :UInt64;
  orders @1 :List(OrderSnapshot);
  lastTimestamp @2 :UInt64;
  # Commit time of the event at checkpoint - 1 (0 when the checkpoint is 0), checked against
  # the log at load like OrderSnapshot.lastTimestamp.
}
