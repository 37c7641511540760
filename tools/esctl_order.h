// `esctl order ...`: the Order service's commands and queries, and what esctl's command
// runners share (exit codes, how they connect).
#pragma once

#include <functional>
#include <memory>

#include "client/client.h"
#include "tools/esctl_args.h"

namespace esd::esctl {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;      // cannot connect, refused token, server error, not found
constexpr int kExitUsage = 2;
constexpr int kExitNotDone = 3;      // an append or an order command that was not done
constexpr int kExitDamage = 4;       // damage found: verify, dump, or what a command needed is damaged

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
