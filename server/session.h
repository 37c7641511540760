// The capabilities a connection gets: Bootstrap (login with a token), Session (the role's
// services). Admin is in server/admin_service.h.
#pragma once

#include "protocol/esd.capnp.h"
#include "server/context.h"

namespace esd::server {

// One per connection.
rpc::Bootstrap::Client MakeBootstrap(ServerContext& ctx);

}  // namespace esd::server
