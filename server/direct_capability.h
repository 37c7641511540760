// A capability whose calls from the network go straight to its server's dispatchCall.
//
// capnp 0.9's LocalClient (what `Interface::Client(kj::heap<Server>())` makes) defers every
// call with evalLater and forks its completion so that a pipelined call can wait on the
// results: promise nodes, a fork hub, its branches and a queued pipeline for every call,
// whether the caller pipelines or not. Most of our methods answer plain data (an append's
// result, a page of events): nothing can be pipelined on them. For those, a DirectCapability
// dispatches at once and gives the RPC system a pipeline that refuses pipelined calls (there
// is no capability in those results to call). Methods whose results hold a capability
// (EventStore.subscribe) and calls made inside this process go through a LocalClient as
// before. docs/performance.md has what it saves per call.
//
// Ordering: a direct call runs when its message is read, a call of a method with
// capabilities one event-loop turn later (LocalClient's evalLater). Two calls on one
// capability may so start in another order than sent when they are of the two kinds; every
// method of ours names what it works on (stream, version, position), and the answers still
// go back in the order they finish, as before.
#pragma once

#include <capnp/capability.h>
#include <capnp/schema.h>
#include <kj/memory.h>

#include <vector>

namespace esd::server {

// `server`'s methods, dispatched directly where their results can hold no capability.
capnp::Capability::Client DirectCapability(uint64_t interface_id, std::vector<bool> direct_methods,
                                           kj::Own<capnp::Capability::Server> server);

// For each method of `schema`, whether its results can hold no capability (no interface or
// AnyPointer field, at any depth of structs and lists).
std::vector<bool> MethodsWithoutCapabilities(capnp::InterfaceSchema schema);

template <typename Interface>
typename Interface::Client DirectCapability(kj::Own<typename Interface::Server> server) {
  const capnp::InterfaceSchema schema = capnp::Schema::from<Interface>();
  static const std::vector<bool> direct = MethodsWithoutCapabilities(schema);
  return DirectCapability(schema.getProto().getId(), direct, kj::mv(server)).template castAs<Interface>();
}

}  // namespace esd::server
