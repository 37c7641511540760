// `esctl snapshot list|show|create|delete`: the aggregate snapshots (one per order stream)
// and the order projection's snapshot. Online the daemon does the work (it writes snapshots
// itself while it runs); with --data-dir, on a stopped store's files under its LOCK. Both
// print the same: `show` decodes the file's bytes here, whichever side read them.
#pragma once

#include "tools/esctl_args.h"
#include "tools/esctl_order.h"

namespace esd::esctl {

int Snapshot(const Invocation& inv, const Connector& connect);

}  // namespace esd::esctl
