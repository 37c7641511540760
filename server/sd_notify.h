// systemd's readiness protocol (sd_notify(3)), without libsystemd: under a unit with
// Type=notify, systemd sets $NOTIFY_SOCKET to a unix datagram socket (a path, or an abstract
// name written with a leading '@') and waits for "READY=1" before it counts the service as
// started. esd sends READY=1 once it serves RPC and HTTP, and STOPPING=1 when a graceful stop
// begins. Without $NOTIFY_SOCKET nothing is sent.
#pragma once

#include <string>

namespace esd::server {

// Sends `state` (e.g. "READY=1") as one datagram to $NOTIFY_SOCKET. Returns true when it was
// sent or when $NOTIFY_SOCKET is unset; false with `error` set (the socket and why) otherwise.
bool NotifyServiceManager(const std::string& state, std::string* error);

}  // namespace esd::server
