// The capabilities a connection gets: Bootstrap (login with a token), Session (the role's
// services). Admin is in server/admin_service.h.
#pragma once

#include "protocol/esd.capnp.h"
#include "server/connection.h"
#include "server/context.h"

namespace esd::server {

// One per connection; the services it hands out keep a reference to `connection`.
rpc::Bootstrap::Client MakeBootstrap(ServerContext& ctx, ConnectionState& connection);

// A role as the wire says it (Session.role, and the framed protocol's login).
rpc::Role RoleOnWire(Role r);

}  // namespace esd::server
