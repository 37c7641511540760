// `esctl --data-dir DIR salvage [--dry-run]`: the way past damage before the end of the log
// (storage/salvage.h). Offline only: it takes the directory's LOCK.
#pragma once

#include "tools/esctl_args.h"

namespace esd::esctl {

int SalvageOffline(const Invocation& inv);

}  // namespace esd::esctl
