// `esctl --data-dir DIR snapshot list|show|create|delete`: the aggregate snapshots (one per
// order stream) and the order projection's snapshot of a stopped store.
#pragma once

#include "tools/esctl_args.h"

namespace esd::esctl {

int Snapshot(const Invocation& inv);

}  // namespace esd::esctl
