// `esctl order ...`: the Order service's commands and queries, and what esctl's command
// runners share (how they connect; exit codes are in tools/esctl_exit.h).
#pragma once

#include <functional>
#include <memory>

#include "client/client.h"
#include "tools/esctl_args.h"
#include "tools/esctl_exit.h"

namespace esd::esctl {

using Connector = std::function<std::unique_ptr<client::Client>()>;
// Prints what went wrong for people and returns the exit code.
using ErrorReporter = std::function<int(const client::Error&)>;

// Runs inv.command "order create", "order get", ... Checks every argument before it
// connects (throws UsageError). A client::Error while a command that writes is in flight
// goes to `report`, followed by how to retry it safely; other client::Errors propagate.
int RunOrder(const Invocation& inv, const Connector& connect, const ErrorReporter& report);

// Says on stderr where the log is damaged (file, offset, position, what), after `context`
// (e.g. "the events before it were printed"), and what to do; returns kExitDamage.
int ReportDamage(const client::Damage& damage, const std::string& context = "");

}  // namespace esd::esctl
