#include "server/config.h"

#include <boost/program_options.hpp>

#include <charconv>
#include <fstream>
#include <sstream>

#include "storage/format.h"

namespace esd::server {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kReader: return "reader";
    case Role::kWriter: return "writer";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

std::string Usage() {
  return R"(usage: esd [options]
  --config FILE            read options from FILE: the flags' names without "--", one
                           "name = value" per line, '#' comments (packaged: /etc/esd/esd.conf);
                           a flag on the command line wins over the file
  --data-dir DIR           data directory (default ./data)
  --listen ADDR            RPC address: HOST:PORT or unix:PATH (default 127.0.0.1:7400)
  --http ADDR              HTTP address for /metrics and /health (default 127.0.0.1:7401; off)
  --fsync MODE             always (default): acknowledge after fdatasync;
                           interval=MS or never: faster, a machine crash may lose recent appends
  --segment-size BYTES     size of new segment files: a multiple of 4096 from 65536 to 2147483648
                           (default 268435456)
  --max-event-size BYTES   largest event accepted (default 1048576, at most 16777216 and half the
                           segment size)
  --snapshot-every N       snapshot an order each time it crosses N events (default 50; 0: never)
  --max-connections N      RPC connections served at once, from 1 to 1000000 (default 10000);
                           one more is told why and closed
  --tcp-keepalive SECONDS  probe a TCP connection idle for SECONDS and close it when its client
                           does not answer 3 probes, SECONDS/3 apart: a client whose machine or
                           network went away frees its connection (default 300, at most 32767;
                           0: never)
  --login-timeout SECONDS  with --auth: close a connection whose client has not logged in
                           within SECONDS, from 1 to 3600 (default 60)
  --scavenge-max-read-rate BYTES
                           bytes per second a scavenge (esctl scavenge start) reads at most,
                           so that appends keep the disk (default 0: no cap)
  --auth FILE              tokens and roles, one "TOKEN reader|writer|admin" per line
  --tls-cert FILE          serve RPC over TLS with this certificate chain (PEM) ...
  --tls-key FILE           ... and this private key (PEM)
  --insecure               allow a non-loopback address without --auth
  --log-level LEVEL        trace, debug, info (default), warn or error: the least a logged line is
  --log-format FORMAT      text (default) or json (one object per line, for log shippers)
  --version                print the version and the git commit, and exit
  --help                   this text
SIGTERM or SIGINT stops esd gracefully: no acknowledged append is lost.
With $NOTIFY_SOCKET set (systemd Type=notify), esd sends READY=1 once it serves.
exit codes:
  0  stopped gracefully (SIGTERM, SIGINT), or --help, --version
  1  failure at run time: the store cannot be opened (damaged, locked by another esd,
     unreadable) or an address cannot be bound; the message says which
  2  bad usage: an unknown flag, a missing or bad value, conflicting flags, a --config or
     --auth file that cannot be read or has a bad line; nothing was started
)";
}

uint64_t ConnectionsThatFit(uint64_t max_connections, uint64_t open_file_limit, uint64_t open_files) {
  const uint64_t used = open_files + kSpareFiles;
  const uint64_t room = open_file_limit > used ? open_file_limit - used : 0;
  return std::max<uint64_t>(1, std::min(max_connections, room));
}

bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  std::string h = address.substr(0, colon);
  if (h.front() == '[') {
    if (h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  }
  unsigned value = 0;
  const char* begin = address.data() + colon + 1;
  const char* end = address.data() + address.size();
  auto [p, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || p != end || value > 65535) return false;
  *host = h;
  *port = static_cast<uint16_t>(value);
  return true;
}

bool IsLoopback(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return true;
  std::string host;
  uint16_t port;
  if (!SplitHostPort(address, &host, &port)) return false;
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::optional<std::map<std::string, Role>> ParseAuthFile(const std::string& text, std::string* error) {
  std::map<std::string, Role> tokens;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string token, role, extra;
    if (!(words >> token)) continue;
    if (!(words >> role) || (words >> extra)) {
      *error = "line " + std::to_string(number) + ": expected \"TOKEN ROLE\"";
      return std::nullopt;
    }
    Role r;
    if (role == "reader") r = Role::kReader;
    else if (role == "writer") r = Role::kWriter;
    else if (role == "admin") r = Role::kAdmin;
    else {
      *error = "line " + std::to_string(number) + ": unknown role '" + role + "' (reader, writer or admin)";
      return std::nullopt;
    }
    if (!tokens.emplace(token, r).second) {
      *error = "line " + std::to_string(number) + ": the token appears twice";
      return std::nullopt;
    }
  }
  if (tokens.empty()) {
    *error = "no tokens: every client would be refused";
    return std::nullopt;
  }
  return tokens;
}

namespace {

namespace po = boost::program_options;

constexpr uint64_t kMostConnections = 1'000'000;  // fs.nr_open's default: no more descriptors
constexpr uint64_t kMostKeepAliveSeconds = 32'767;  // Linux's bound (transport::kMaxKeepAliveSeconds)
constexpr uint64_t kMostLoginSeconds = 3600;

// The options a --config file may hold: every flag but --config, --help and --version.
// Values are taken as text and checked by Apply, so that the messages are ours and the same
// for both sources.
po::options_description FileOptions() {
  po::options_description d("esd options");
  for (const char* name : {"data-dir", "listen", "http", "fsync", "segment-size", "max-event-size", "snapshot-every",
                           "max-connections", "tcp-keepalive", "login-timeout", "scavenge-max-read-rate", "auth",
                           "tls-cert", "tls-key", "log-level", "log-format"}) {
    d.add_options()(name, po::value<std::string>());
  }
  d.add_options()("insecure", po::bool_switch());
  return d;
}

po::options_description CommandLineOptions() {
  po::options_description d = FileOptions();
  d.add_options()("config", po::value<std::string>())("help,h", po::bool_switch())("version", po::bool_switch());
  return d;
}

bool ParseNumber(const std::string& where, const std::string& text, uint64_t* n, std::string* error) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *n);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) {
    *error = where + ": not a number: '" + text + "'";
    return false;
  }
  return true;
}

// Sets one option from its text. `where` names it in messages: "--segment-size" for a
// flag, "FILE:LINE: segment-size" for a line of the --config file.
bool Apply(const std::string& name, const std::vector<std::string>& values, const std::string& where, Config* c,
           std::string* error) {
  if (name == "insecure") {
    const std::string v = values.empty() ? "true" : values.back();
    if (v == "true" || v == "yes" || v == "on" || v == "1") c->insecure = true;
    else if (v == "false" || v == "no" || v == "off" || v == "0") c->insecure = false;
    else {
      *error = where + ": expected true or false, got '" + v + "'";
      return false;
    }
    return true;
  }
  if (name == "help" || name == "version") {
    (name == "help" ? c->help : c->version) = true;
    return true;
  }
  if (values.empty() || values.back().empty()) {
    *error = where + " needs a value";
    return false;
  }
  const std::string& v = values.back();
  if (name == "data-dir") c->data_dir = v;
  else if (name == "listen") c->listen = v;
  else if (name == "http") c->http = v;
  else if (name == "auth") c->auth_file = v;
  else if (name == "tls-cert") c->tls_cert = v;
  else if (name == "tls-key") c->tls_key = v;
  else if (name == "config") c->config_file = v;
  else if (name == "fsync") {
    auto mode = storage::DurabilityMode::Parse(v);
    if (!mode.ok()) {
      *error = where + ": " + mode.status().message();
      return false;
    }
    c->fsync = mode.value();
  } else if (name == "log-level") {
    const auto level = log::ParseLevel(v);
    if (!level) {
      *error = where + ": expected trace, debug, info, warn or error, got '" + v + "'";
      return false;
    }
    c->log_level = *level;
  } else if (name == "log-format") {
    const auto format = log::ParseFormat(v);
    if (!format) {
      *error = where + ": expected text or json, got '" + v + "'";
      return false;
    }
    c->log_format = *format;
  } else {
    uint64_t n = 0;
    if (!ParseNumber(where, v, &n, error)) return false;
    if (name == "segment-size") {
      if (n < storage::format::kMinSegmentSize || n > storage::format::kMaxSegmentSize || n % 4096 != 0) {
        *error = where + ": must be a multiple of 4096 from " + std::to_string(storage::format::kMinSegmentSize) +
                 " to " + std::to_string(storage::format::kMaxSegmentSize) + " bytes, got " + v;
        return false;
      }
      c->segment_size = n;
    } else if (name == "max-event-size") {
      const uint64_t least = storage::format::kEventHeaderSize + 2;
      if (n < least || n > storage::kMaxEventSizeLimit) {
        *error = where + ": must be from " + std::to_string(least) + " to " +
                 std::to_string(storage::kMaxEventSizeLimit) + " bytes, got " + v;
        return false;
      }
      c->max_event_size = n;
    } else if (name == "max-connections") {
      if (n < 1 || n > kMostConnections) {
        *error = where + ": must be from 1 to " + std::to_string(kMostConnections) + ", got " + v;
        return false;
      }
      c->max_connections = n;
    } else if (name == "tcp-keepalive") {
      if (n > kMostKeepAliveSeconds) {
        *error = where + ": must be from 0 (never) to " + std::to_string(kMostKeepAliveSeconds) + " seconds, got " + v;
        return false;
      }
      c->tcp_keepalive = n;
    } else if (name == "login-timeout") {
      if (n < 1 || n > kMostLoginSeconds) {
        *error = where + ": must be from 1 to " + std::to_string(kMostLoginSeconds) + " seconds, got " + v;
        return false;
      }
      c->login_timeout = n;
    } else if (name == "scavenge-max-read-rate") {
      c->scavenge_max_read_rate = n;
    } else {
      c->snapshot_every = n;
    }
  }
  return true;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace

bool ParseConfigText(const std::string& text, const std::string& name, Config* config, std::string* error) {
  const po::options_description options = FileOptions();
  std::istringstream in(text);
  std::string line;
  int number = 0;
  // program_options reads the file format; one line at a time so that a message names its line.
  while (std::getline(in, line)) {
    ++number;
    const std::string at = name + ":" + std::to_string(number) + ": ";
    const std::string trimmed = Trim(line);
    if (!trimmed.empty() && trimmed.front() == '[') {
      *error = at + "sections are not used: write \"name = value\" lines only";
      return false;
    }
    po::parsed_options parsed(&options);
    try {
      std::istringstream one(line);
      parsed = po::parse_config_file(one, options, /*allow_unregistered=*/true);
    } catch (const po::error&) {
      *error = at + "expected \"name = value\", got '" + trimmed + "'";
      return false;
    }
    for (const po::option& o : parsed.options) {
      if (o.unregistered) {
        *error = at + "unknown key '" + o.string_key +
                 "' (the keys are esd's flags without \"--\", see esd --help)";
        return false;
      }
      if (!Apply(o.string_key, o.value, at + o.string_key, config, error)) return false;
    }
  }
  return true;
}

std::optional<Config> ParseArgs(const std::vector<std::string>& args, std::string* error) {
  Config c;
  const po::options_description options = CommandLineOptions();
  po::parsed_options parsed(&options);
  try {
    parsed = po::command_line_parser(args)
                 .options(options)
                 .style(po::command_line_style::unix_style & ~po::command_line_style::allow_guessing)
                 .run();
  } catch (const po::unknown_option& e) {
    *error = "unknown flag '" + e.get_option_name() + "' (see esd --help)";
    return std::nullopt;
  } catch (const po::invalid_command_line_syntax& e) {
    if (e.kind() == po::invalid_syntax::missing_parameter) *error = e.get_option_name() + " needs a value";
    else *error = std::string(e.what()) + " (see esd --help)";
    return std::nullopt;
  } catch (const po::error& e) {
    *error = std::string(e.what()) + " (see esd --help)";
    return std::nullopt;
  }
  // The --config file first, then the flags over it in their order: the last one counts.
  for (const po::option& o : parsed.options) {
    if (o.string_key.empty()) {
      *error = "unexpected argument '" + (o.original_tokens.empty() ? std::string() : o.original_tokens.front()) +
               "': esd takes flags only (see esd --help)";
      return std::nullopt;
    }
    if (o.string_key == "config" && !Apply(o.string_key, o.value, "--config", &c, error)) return std::nullopt;
  }
  if (!c.config_file.empty()) {
    std::ifstream f(c.config_file);
    std::stringstream text;
    text << f.rdbuf();
    if (!f) {
      *error = "--config: cannot read " + c.config_file;
      return std::nullopt;
    }
    if (!ParseConfigText(text.str(), c.config_file, &c, error)) return std::nullopt;
  }
  for (const po::option& o : parsed.options) {
    if (!Apply(o.string_key, o.value, "--" + o.string_key, &c, error)) return std::nullopt;
  }
  if (c.help || c.version) return c;
  if (c.max_event_size > c.segment_size / 2) {
    *error = "--max-event-size " + std::to_string(c.max_event_size) + " is more than half of --segment-size " +
             std::to_string(c.segment_size) + ": an event must fit a segment twice";
    return std::nullopt;
  }
  std::string host;
  uint16_t port;
  if (c.listen.rfind("unix:", 0) != 0 && !SplitHostPort(c.listen, &host, &port)) {
    *error = "--listen: expected HOST:PORT or unix:PATH, got '" + c.listen + "'";
    return std::nullopt;
  }
  if (c.http != "off" && !SplitHostPort(c.http, &host, &port)) {
    *error = "--http: expected HOST:PORT or off, got '" + c.http + "'";
    return std::nullopt;
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    *error = "--tls-cert and --tls-key go together";
    return std::nullopt;
  }
  if (!c.auth_file.empty()) {
    std::ifstream f(c.auth_file);
    if (!f) {
      *error = "--auth: cannot read " + c.auth_file;
      return std::nullopt;
    }
    std::stringstream text;
    text << f.rdbuf();
    std::string why;
    auto tokens = ParseAuthFile(text.str(), &why);
    if (!tokens) {
      *error = "--auth " + c.auth_file + ": " + why;
      return std::nullopt;
    }
    c.tokens = std::move(*tokens);
  }
  for (const std::string* addr : {&c.listen, &c.http}) {
    if (*addr != "off" && !IsLoopback(*addr) && c.auth_file.empty() && !c.insecure) {
      *error = "refusing to listen on " + *addr + " without --auth (anyone could read and write); "
               "give --auth FILE, or --insecure if this network is trusted";
      return std::nullopt;
    }
  }
  return c;
}

}  // namespace esd::server
