// esctl's command line: global options, the command, its flags and positional arguments,
// and the help texts. Parsing knows every command's flags, so a typo is a usage error
// (exit 2) before anything is sent to the server.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace esd::esctl {

// Bad usage: esctl prints the message and a hint to --help, and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GlobalOptions {
  std::string connect;  // --connect, else $ESD_CONNECT, else 127.0.0.1:7400
  std::string token;    // --token, else $ESD_TOKEN
  bool json = false;
  bool tls = false;  // also implied by --tls-ca
  std::string tls_ca_file;
  std::string tls_server_name;
  std::string data_dir;  // --data-dir: work offline on a stopped store's files
};

struct Invocation {
  GlobalOptions global;
  std::string command;  // empty: none was given
  bool help = false;    // --help / -h anywhere, or the `help` command (command = its topic)
  bool version = false;  // --version anywhere: print the version line and exit 0
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>, std::less<>> flags;  // a switch holds one ""

  bool Has(std::string_view flag) const { return flags.find(flag) != flags.end(); }
  std::optional<std::string> Value(std::string_view flag) const;
  std::vector<std::string> Values(std::string_view flag) const;
};

// Throws UsageError. Global options may come before or after the command; `--name=value`
// and `--name value` both work; `--` ends the options.
Invocation ParseCommandLine(const std::vector<std::string>& args);

// `esctl help`: the usage line, `command_listing` (the dispatcher's table, tools/esctl.h),
// the global options and the exit codes.
std::string OverviewText(std::string_view command_listing);

// Whether the parser knows `command` ("read", "order create", "order") and has its help.
bool HasHelp(std::string_view command);

// One command's help: its own text, then (for order commands) the order exit codes.
std::string HelpText(const std::string& command);

// Numbers for flags; throw UsageError naming the flag.
uint64_t ParseNumber(std::string_view flag, const std::string& text);
uint32_t ParseCount(std::string_view flag, const std::string& text);  // 1..4294967295

}  // namespace esd::esctl
