// esctl's offline commands: work on a stopped store's files (--data-dir), holding its LOCK
// so that esd cannot start on them meanwhile.
#pragma once

#include "tools/esctl_args.h"

namespace esd::esctl {

inline constexpr int kExitDamage = 4;

// `esctl --data-dir DIR verify`.
int VerifyOffline(const Invocation& inv);

// `esctl --data-dir DIR replay PROJECTION`.
int ReplayOffline(const Invocation& inv);

// `esctl --data-dir DIR dump (SEGMENT | --position P)`.
int Dump(const Invocation& inv);

}  // namespace esd::esctl
