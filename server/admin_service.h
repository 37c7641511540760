// The Admin capability (protocol/esd.capnp): status, verify, backup, projection rebuilds and
// snapshots, for a session with the admin role.
//
// Verify and backup read every file of the store, so they run on a thread of their own
// (ServerContext::jobs) and answer on the event loop. A caller that passes a ProgressSink
// is told how far they are (server/progress.h), from counters the job thread updates: the
// thread never calls into capnp.
#pragma once

#include "protocol/esd.capnp.h"
#include "server/connection.h"
#include "server/context.h"

namespace esd::server {

// readSnapshot sends a snapshot file in pages of at most this many bytes, well below the
// receiver's 64 MiB message limit; a caller stitches them (protocol/esd.capnp).
inline constexpr uint64_t kSnapshotPageBytes = 16u << 20;
// A caller from before pages (maxBytes 0) gets the whole file in one answer, up to this
// size: with the message's framing a larger one would pass the 64 MiB limit.
inline constexpr uint64_t kMaxSnapshotSend = 48u << 20;

// Snapshot reads wait while `connection` has more than kMaxOutgoingBytes of answers unsent.
rpc::Admin::Client MakeAdmin(ServerContext& ctx, ConnectionState& connection);

}  // namespace esd::server
