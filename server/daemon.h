// The esd daemon: opens the store, serves RPC on the KJ event loop of the calling thread,
// HTTP /metrics, /health and /ready and the signals on an Asio thread, and stops gracefully on
// SIGTERM or SIGINT.
//
// Once listening it prints one line to stdout, for people and for tests that start it on
// port 0:
//   esd ready: rpc=HOST:PORT http=HOST:PORT data=DIR events=N segments=S bytes=B allocated=A fsync=MODE
// bytes: of log written (each segment from its start to its last batch; zeros kept ahead of
// the writer not counted); allocated: disk blocks of the segment and spare files.
#pragma once

#include "server/config.h"

namespace esd::server {

// Runs until a signal stops it. Returns the process exit code: 0 after a graceful stop,
// 1 when the store or an address could not be opened.
int RunDaemon(const Config& config);

}  // namespace esd::server
