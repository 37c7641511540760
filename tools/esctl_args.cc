#include "tools/esctl_args.h"

#include <charconv>
#include <cstdlib>

namespace esd::esctl {

namespace {

struct FlagSpec {
  std::string_view name;  // without the dashes
  bool takes_value;
  bool repeatable;
};

struct CommandSpec {
  std::string_view name;
  size_t positional;  // exactly this many
  std::vector<FlagSpec> flags;
  std::string_view help;
};

constexpr std::string_view kOverview = R"(usage: esctl [--connect ADDR] [--token T] [--json] COMMAND [ARGS...]

Talks to an esd event store.

commands:
  status       the server's status (needs the admin role)
  append       append one event to a stream
  read         read one stream, forwards or backwards
  read-all     read the global log ($all), optionally filtered
  tail         follow the global log as events arrive, until Ctrl-C
  help         this text, or `esctl help COMMAND`

global options (before or after the command):
  --connect ADDR          HOST:PORT or unix:PATH (default: $ESD_CONNECT, else 127.0.0.1:7400)
  --token T               the login token (default: $ESD_TOKEN; without --auth esd takes any)
  --json                  one JSON object per line on stdout instead of text
  --tls                   connect over TLS, trusting the system's certificate authorities
  --tls-ca FILE           connect over TLS, trusting the PEM certificate(s) in FILE
  --tls-server-name NAME  the name the server's certificate must carry (default: the host)
  -h, --help              help; `esctl COMMAND --help` for a command

Events print one per line: POSITION STREAM@VERSION TYPE TIMESTAMP DATA, where DATA is the
compacted JSON, the text, a quoted string when the text has control characters, or
"base64:..." when it is not UTF-8. With --json each line is an object with the keys stream,
version, position, id, type, contentType, timestamp, metadata and data (JSON values when the
content type is JSON and they parse, else strings; "dataEncoding":"base64" marks base64).

exit codes: 0 ok, 1 failure (cannot connect, refused token, server error), 2 bad usage,
3 append not done (wrong expected version, or rejected by the server)
)";

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"status", 0, {}, R"(usage: esctl status

Prints the server's version, durable position (the number of events in the store), segment
count, data directory, open connections and subscriptions, appends and events written since
the start, and uptime. Needs a token with the admin role.
)"},
      {"append",
       1,
       {{"type", true, false},
        {"data", true, false},
        {"expected-version", true, false},
        {"id", true, false},
        {"metadata", true, false},
        {"content-type", true, false}},
       R"(usage: esctl append STREAM --type T --data DATA [options]

Appends one event to STREAM and prints its version and position.

  --type T                   the event type, e.g. OrderPlaced (required)
  --data DATA                the event's data (required); must be JSON when the content
                             type is JSON
  --content-type CT          default application/json
  --metadata META            the event's metadata; must be JSON when the content type is JSON
  --expected-version EV      any (default), no-stream, exists, or the stream's last version N;
                             the append fails (exit 3) and prints the actual version otherwise
  --id UUID                  the event id (default: a random one). Appending again with the same
                             id and content is an idempotent retry: it prints the original
                             positions and writes nothing
)"},
      {"read",
       1,
       {{"from", true, false}, {"backward", false, false}, {"count", true, false}},
       R"(usage: esctl read STREAM [--from V] [--backward] [--count N]

Prints the events of STREAM in version order (or reverse order with --backward).

  --from V        the first version to print (default: 0, or the last one with --backward)
  --backward      newest first
  --count N       at most N events (default: all of them, fetched 1000 at a time)

A stream without events prints nothing (and says so on stderr).
)"},
      {"read-all",
       0,
       {{"from", true, false}, {"count", true, false}, {"stream-prefix", true, false}, {"type", true, true}},
       R"(usage: esctl read-all [--from P] [--count N] [--stream-prefix P] [--type T]...

Prints the events of the global log ($all) in position order.

  --from P            the first position to look at (default 0)
  --count N           at most N events (default: all of them up to the end of the log)
  --stream-prefix P   only events of streams whose name starts with P
  --type T            only events of type T; repeat for several types (any of them)
)"},
      {"tail",
       0,
       {{"from", true, false}, {"stream-prefix", true, false}, {"type", true, true}},
       R"(usage: esctl tail [--from P|start|end] [--stream-prefix P] [--type T]...

Subscribes to the global log and prints events as they are appended, until interrupted
(Ctrl-C or SIGTERM: exit 0). Once the past is printed it says "-- caught up at P --" on
stderr (never on stdout).

  --from P|start|end  where to begin: a position, the start of the log, or (default) the end,
                      which prints only what is appended from now on
  --stream-prefix P   only events of streams whose name starts with P
  --type T            only events of type T; repeat for several types (any of them)
)"},
      {"help", 0, {}, "usage: esctl help [COMMAND]\n"},
  };
  return kCommands;
}

const CommandSpec* FindCommand(std::string_view name) {
  for (const auto& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const FlagSpec* FindFlag(const CommandSpec& command, std::string_view name) {
  for (const auto& f : command.flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IsGlobalSwitch(std::string_view name) { return name == "json" || name == "tls"; }
bool IsGlobalValue(std::string_view name) {
  return name == "connect" || name == "token" || name == "tls-ca" || name == "tls-server-name";
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

std::optional<std::string> Invocation::Value(std::string_view flag) const {
  auto it = flags.find(flag);
  if (it == flags.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Invocation::Values(std::string_view flag) const {
  auto it = flags.find(flag);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

Invocation ParseCommandLine(const std::vector<std::string>& args) {
  Invocation inv;
  std::optional<std::string> connect, token;
  const CommandSpec* command = nullptr;
  bool options_ended = false;
  std::vector<std::string> pending;  // positional arguments seen after the command name
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool is_option = !options_ended && arg.size() > 1 && arg[0] == '-';
    if (!is_option) {
      if (command == nullptr) {
        command = FindCommand(arg);
        if (command == nullptr) throw UsageError("unknown command '" + arg + "'");
        inv.command = arg;
      } else {
        pending.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      inv.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) throw UsageError("unknown option '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const FlagSpec* spec = command != nullptr ? FindFlag(*command, name) : nullptr;
    const bool takes_value = IsGlobalValue(name) || (spec != nullptr && spec->takes_value);
    if (!IsGlobalSwitch(name) && !IsGlobalValue(name) && spec == nullptr) {
      throw UsageError("unknown option '--" + name + "'" +
                       (command != nullptr ? " for " + std::string(command->name) : std::string()));
    }
    if (!takes_value && value) throw UsageError("option '--" + name + "' takes no value");
    if (takes_value && !value) {
      if (i + 1 >= args.size()) throw UsageError("option '--" + name + "' needs a value");
      value = args[++i];
    }
    if (name == "json") inv.global.json = true;
    else if (name == "tls") inv.global.tls = true;
    else if (name == "connect") connect = *value;
    else if (name == "token") token = *value;
    else if (name == "tls-ca") inv.global.tls_ca_file = *value, inv.global.tls = true;
    else if (name == "tls-server-name") inv.global.tls_server_name = *value;
    else {
      auto& values = inv.flags[name];
      if (!values.empty() && !spec->repeatable) throw UsageError("option '--" + name + "' is given twice");
      values.push_back(value.value_or(""));
    }
  }
  if (inv.command == "help") {
    inv.help = true;
    inv.command.clear();
    if (pending.size() > 1) throw UsageError("help takes at most one command name");
    if (!pending.empty()) {
      if (FindCommand(pending[0]) == nullptr) throw UsageError("unknown command '" + pending[0] + "'");
      inv.command = pending[0];
    }
    return inv;
  }
  if (command != nullptr && !inv.help && pending.size() != command->positional) {
    if (pending.size() < command->positional) throw UsageError(inv.command + ": missing the STREAM argument");
    throw UsageError(inv.command + ": unexpected argument '" + pending[command->positional] + "'");
  }
  inv.positional = std::move(pending);
  inv.global.connect = connect ? *connect : Env("ESD_CONNECT");
  if (inv.global.connect.empty()) inv.global.connect = "127.0.0.1:7400";
  inv.global.token = token ? *token : Env("ESD_TOKEN");
  return inv;
}

std::string HelpText(const std::string& command) {
  if (const CommandSpec* spec = command.empty() ? nullptr : FindCommand(command)) {
    return std::string(spec->help) +
           "\nglobal options: --connect ADDR, --token T, --json, --tls, --tls-ca FILE (see esctl help)\n";
  }
  return std::string(kOverview);
}

uint64_t ParseNumber(std::string_view flag, const std::string& text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    throw UsageError("--" + std::string(flag) + ": expected a number (0..18446744073709551615), got '" + text + "'");
  }
  return v;
}

uint32_t ParseCount(std::string_view flag, const std::string& text) {
  uint32_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end || v == 0) {
    throw UsageError("--" + std::string(flag) + ": expected a count (1..4294967295), got '" + text + "'");
  }
  return v;
}

}  // namespace esd::esctl
