# esd's framed protocol: appends and order commands without Cap'n Proto's RPC system, on the
# same port as it (docs/server.md, "Framed appends"). For producers whose every call is a
# write: the RPC system costs ~3/4 of the daemon's CPU per single-event append and ~2/3 per
# order command (docs/performance.md), which a frame of its own does not.
#
# A connection speaks it when its first four bytes (after TLS, if the port speaks TLS) are
# "ESF1" (45 53 46 31; the 1 is the protocol's version). No Cap'n Proto RPC message starts
# so: its first word counts segments. After those bytes the client sends Requests and the
# daemon Responses, each one Cap'n Proto message in the standard stream framing (a segment
# table, then the segments). Requests may be sent without waiting for answers; each answer
# carries its request's id, and answers come in the order the requests finish, not the order
# they were sent (appends to different streams may be written in different group commits).
#
# What the RPC system gives and this protocol keeps: the same checks and results as
# EventStore.append and OrderService's commands (an answer means durable, as --fsync says;
# one connection's commands on one order race as two connections' would, as over RPC), the
# same roles and tokens,
# the same bounds (the daemon stops reading a connection with kMaxInFlight requests not yet
# answered, and the store answers `overloaded` past its queue bound).
@0xffa50897a2d53dde;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("esd::rpc::frames");

using Esd = import "esd.capnp";

const maxInFlight :UInt32 = 1024;
# Requests of one connection read and not yet answered onto its socket: past this the daemon
# reads no more of the connection until answers leave.

struct Request {
  id @0 :UInt64;   # the client's to choose; its Response carries it back
  union {
    login @1 :Text;
    # A token of the daemon's --auth file; answered with the token's role. Without --auth
    # every connection has the admin role and a login is not needed (any token is accepted).
    # With --auth, appends before a login are refused (`error`), and an unknown token is
    # answered with `error` and the connection closes.

    append @2 :Append;
    # As EventStore.append: answered once the events are durable, or refused with a reason.

    command @3 :OrderCommand;
    # As OrderService's command of that kind: answered with its CommandResult once the
    # command's events are durable, or with the rule it broke. An esd older than this
    # answers it with `error` ("unknown request kind"), and nothing is written.
  }
}

struct OrderCommand {
  # OrderService.createOrder, addItem, removeItem, placeOrder and cancelOrder's arguments.
  meta @0 :Esd.CommandMeta;
  orderId @1 :Text;
  union {
    createOrder :group {
      customerId @2 :Text;
    }
    addItem :group {
      sku @3 :Text;
      quantity @4 :UInt32;
      unitPriceCents @5 :Int64;
    }
    removeItem :group {
      sku @6 :Text;
      quantity @7 :UInt32;   # 0 removes the whole line
    }
    placeOrder @8 :Void;
    cancelOrder :group {
      reason @9 :Text;
    }
  }
}

struct Append {
  stream @0 :Text;
  expected @1 :Esd.ExpectedVersion;
  events @2 :List(Esd.EventData);
}

struct Response {
  id @0 :UInt64;   # the request's; 0 for an error about a frame (or an id) that could not be read
  union {
    login @1 :Esd.Role;
    append @2 :Esd.AppendResult;
    error @3 :Text;
    # The request was not served and nothing was written: it did not decode, was of a kind
    # this daemon does not know, or needs a login first. A frame that cannot be read at all,
    # or a login with an unknown token, is answered so and the connection closes after it.
    command @4 :Esd.CommandResult;
  }
}
