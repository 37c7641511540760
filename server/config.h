// The daemon's configuration: command-line flags, the --config file (the same option names,
// `key = value` lines), the --auth file, and the rules between them (no non-loopback
// listener without --auth unless --insecure).
//
// Flags are parsed with Boost.program_options. A flag given twice on the command line: the
// last one counts. A flag on the command line wins over the same key in the --config file.
// Every error here is a usage error: esd prints it and exits 2 (see ExitCode).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "log/log.h"
#include "storage/store.h"

namespace esd::server {

enum class Role : uint8_t { kReader = 0, kWriter = 1, kAdmin = 2 };
const char* RoleName(Role role);

struct Config {
  std::string data_dir = "data";
  std::string listen = "127.0.0.1:7400";  // host:port, or unix:PATH
  std::string http = "127.0.0.1:7401";    // host:port; "off" disables the HTTP endpoint
  storage::DurabilityMode fsync;
  uint64_t segment_size = storage::Options().segment_size;
  uint64_t max_event_size = storage::Options().max_event_size;
  uint64_t snapshot_every = 50;  // aggregate snapshot each time an order crosses N events
  // RPC connections served at once; one more is told why and closed (docs/server.md).
  uint64_t max_connections = 10'000;
  // A TCP connection idle this long is probed, and ended when its client does not answer
  // (transport::SetKeepAlive): a client that vanished without closing frees its slot. 0: off.
  uint64_t tcp_keepalive = 300;
  // With --auth: a connection whose client has not logged in this many seconds after it was
  // admitted is closed, so that clients without a token cannot hold the connection slots.
  uint64_t login_timeout = 60;
  // Bytes per second a scavenge reads at most (0: no cap): its I/O beside the appends'.
  uint64_t scavenge_max_read_rate = 0;
  std::string auth_file;
  std::string tls_cert;
  std::string tls_key;
  bool insecure = false;
  log::Level log_level = log::Level::kInfo;     // --log-level: lines below it are left out
  log::Format log_format = log::Format::kText;  // --log-format text|json (docs/server.md, "Log")
  std::string config_file;          // --config: where the options above came from, if any
  bool help = false;
  bool version = false;
  std::map<std::string, Role> tokens;  // from auth_file
};

// esd's exit codes, one meaning each; Usage() prints the table.
enum ExitCode : int {
  kExitOk = 0,       // a graceful stop (SIGTERM, SIGINT), --help, --version
  kExitFailure = 1,  // at run time: the store cannot be opened (damaged, locked, unreadable), an address
                     // cannot be bound
  kExitUsage = 2,    // bad usage: unknown flag, missing or bad value, conflicting flags, a --config or
                     // --auth file that cannot be read or has a bad line; nothing was started or changed
};

// Descriptors kept free beside the connections and the files open at start: the store's new
// segments, snapshot and backup files, HTTP connections.
inline constexpr uint64_t kSpareFiles = 256;
// How many connections fit the open-file limit: `max_connections`, or fewer when
// `open_file_limit` minus the `open_files` in use at start and kSpareFiles leaves less room
// (then at least 1: a daemon that refused everyone would serve no one).
uint64_t ConnectionsThatFit(uint64_t max_connections, uint64_t open_file_limit, uint64_t open_files);

// Parses argv (without argv[0]), and the --config file if one is named. On failure returns
// nullopt and sets `error` to a message naming the flag (or the file, line and key) and what
// is wrong.
std::optional<Config> ParseArgs(const std::vector<std::string>& args, std::string* error);
std::string Usage();

// Parses the text of a --config file (`key = value` lines, '#' comments) into `config`,
// over its defaults; `name` is the file's name for messages. Only what the command line may
// also say; --config, --help and --version are not keys.
bool ParseConfigText(const std::string& text, const std::string& name, Config* config, std::string* error);

// Lines "TOKEN ROLE" (role: reader, writer or admin); '#' starts a comment. Errors name the
// line.
std::optional<std::map<std::string, Role>> ParseAuthFile(const std::string& text, std::string* error);

// 127.0.0.0/8, ::1, localhost, or a unix: socket.
bool IsLoopback(const std::string& address);

// Splits "host:port" ("[::1]:7400" for IPv6). False when malformed.
bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port);

}  // namespace esd::server
