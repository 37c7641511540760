// The capabilities a connection gets: Bootstrap (login with a token), Session (the role's
// services) and Admin.
#pragma once

#include "protocol/esd.capnp.h"
#include "server/context.h"

namespace esd::server {

// One per connection.
rpc::Bootstrap::Client MakeBootstrap(ServerContext& ctx);

}  // namespace esd::server
