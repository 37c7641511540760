#include "server/config.h"

#include <charconv>
#include <fstream>
#include <sstream>

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
  --data-dir DIR           data directory (default ./data)
  --listen ADDR            RPC address: HOST:PORT or unix:PATH (default 127.0.0.1:7400)
  --http ADDR              HTTP address for /metrics and /health (default 127.0.0.1:7401; off)
  --fsync MODE             always (default): acknowledge after fdatasync;
                           interval=MS or never: faster, a machine crash may lose recent appends
  --segment-size BYTES     size of new segment files (default 268435456)
  --max-event-size BYTES   largest event accepted (default 1048576, at most 16777216)
  --snapshot-every N       snapshot an order each time it crosses N events (default 50; 0: never)
  --auth FILE              tokens and roles, one "TOKEN reader|writer|admin" per line
  --tls-cert FILE          serve RPC over TLS with this certificate chain (PEM) ...
  --tls-key FILE           ... and this private key (PEM)
  --insecure               allow a non-loopback address without --auth
  --log-level LEVEL        trace, debug, info (default), warn or error: the least a logged line is
  --log-format FORMAT      text (default) or json (one object per line, for log shippers)
  --help                   this text
SIGTERM or SIGINT stops esd gracefully: no acknowledged append is lost.
)";
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

std::optional<Config> ParseArgs(const std::vector<std::string>& args, std::string* error) {
  Config c;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 >= args.size()) {
        *error = flag + " needs a value";
        return std::nullopt;
      }
      return args[++i];
    };
    if (flag == "--help" || flag == "-h") {
      c.help = true;
    } else if (flag == "--insecure") {
      c.insecure = true;
    } else if (flag == "--data-dir" || flag == "--listen" || flag == "--http" || flag == "--auth" ||
               flag == "--tls-cert" || flag == "--tls-key" || flag == "--fsync" || flag == "--segment-size" ||
               flag == "--max-event-size" || flag == "--snapshot-every" || flag == "--log-level" ||
               flag == "--log-format") {
      auto v = value();
      if (!v) return std::nullopt;
      if (flag == "--data-dir") c.data_dir = *v;
      else if (flag == "--listen") c.listen = *v;
      else if (flag == "--http") c.http = *v;
      else if (flag == "--auth") c.auth_file = *v;
      else if (flag == "--tls-cert") c.tls_cert = *v;
      else if (flag == "--tls-key") c.tls_key = *v;
      else if (flag == "--log-level") {
        auto level = log::ParseLevel(*v);
        if (!level) {
          *error = "--log-level: expected trace, debug, info, warn or error, got '" + *v + "'";
          return std::nullopt;
        }
        c.log_level = *level;
      } else if (flag == "--log-format") {
        auto format = log::ParseFormat(*v);
        if (!format) {
          *error = "--log-format: expected text or json, got '" + *v + "'";
          return std::nullopt;
        }
        c.log_format = *format;
      }
      else if (flag == "--fsync") {
        auto mode = storage::DurabilityMode::Parse(*v);
        if (!mode.ok()) {
          *error = "--fsync: " + mode.status().message();
          return std::nullopt;
        }
        c.fsync = mode.value();
      } else {
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (ec != std::errc() || p != v->data() + v->size()) {
          *error = flag + ": not a number: '" + *v + "'";
          return std::nullopt;
        }
        (flag == "--segment-size" ? c.segment_size : flag == "--max-event-size" ? c.max_event_size : c.snapshot_every) = n;
      }
    } else {
      *error = "unknown argument '" + args[i] + "' (see --help)";
      return std::nullopt;
    }
  }
  if (c.help) return c;
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
