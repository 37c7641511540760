// esctl's dispatcher: the table of top-level commands, which both runs them and lists them
// (`esctl help`, `esctl` without a command), so the listing cannot drift from what runs.
// Arguments are parsed in tools/esctl_args.h; `main` is in tools/esctl_main.cc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tools/esctl_args.h"
#include "tools/esctl_order.h"

namespace esd::esctl {

struct CommandEntry {
  std::string_view name;     // a top-level word: "order" runs every "order ..." command
  std::string_view summary;  // one line of the overview
  bool offline;              // also works with --data-dir on a stopped store's files
  int (*run)(const Invocation& inv, const Connector& connect);
};

// Every command esctl runs, in the order the overview lists them.
const std::vector<CommandEntry>& CommandTable();

// `esctl help`: the usage, the command table, the global options and the exit codes.
std::string Overview();

// The whole program: parses argv, runs the command, returns the exit code (esctl_exit.h).
int Main(int argc, char** argv);

}  // namespace esd::esctl
