// `esctl scavenge start | status | stop`: the daemon's reclaiming of the disk space of
// removed events (docs/esctl.md, "Scavenge"; the model: docs/storage.md, "Scavenge").
#pragma once

#include <cstdint>
#include <string>

#include "client/client.h"
#include "tools/esctl_args.h"
#include "tools/esctl_order.h"

namespace esd::esctl {

// Runs inv.command "scavenge start", "scavenge status" or "scavenge stop". client::Errors
// (permission denied below the admin role ...) propagate to the caller.
int RunScavenge(const Invocation& inv, const Connector& connect);

// What `scavenge status` prints (text: one "NAME  VALUE" row each; JSON: one object), with
// the rate of reading from its start to `now_micros` (or to its end).
std::string ScavengeText(const client::ScavengeStatus& s, uint64_t now_micros, bool json);

// What `scavenge start` says on stderr when it stops following `s`: `interrupted` (Ctrl-C
// while it runs) says how to see or stop it; a failed run says what to do; else "".
std::string FollowEndNote(const client::ScavengeStatus& s, bool interrupted);
// What `scavenge stop` says: on stdout when `was_running` (ends with '\n'), else the note
// for stderr (none running; `state` is the last run's).
std::string StopText(bool was_running, const std::string& state);

}  // namespace esd::esctl
