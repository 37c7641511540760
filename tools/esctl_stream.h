// `esctl stream delete | truncate | meta`: a stream's lifecycle (docs/esctl.md, "Stream
// lifecycle"; the model: docs/storage.md, "Lifecycle"). `esctl streams` (the listing) is
// another command.
#pragma once

#include "tools/esctl_args.h"
#include "tools/esctl_order.h"

namespace esd::esctl {

// Runs inv.command "stream delete", "stream truncate" or "stream meta". Checks every
// argument before it connects (throws UsageError); client::Errors propagate to the caller.
int RunStream(const Invocation& inv, const Connector& connect);

}  // namespace esd::esctl
