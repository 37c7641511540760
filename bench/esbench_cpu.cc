#include "bench/esbench_cpu.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace esbench {

std::optional<double> ReadProcessCpuSeconds(pid_t pid, std::string* error) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream f(path);
  std::stringstream text;
  if (f) text << f.rdbuf();
  const std::string stat = text.str();
  if (!f || stat.empty()) {
    *error = "no process " + std::to_string(pid) + " (cannot read " + path + ")";
    return std::nullopt;
  }
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so count from the last ')'.
  // utime and stime are fields 14 and 15 in proc(5)'s numbering; the state (3) is the first.
  const size_t close = stat.rfind(')');
  std::vector<std::string> fields;
  if (close != std::string::npos) {
    std::istringstream rest(stat.substr(close + 1));
    for (std::string field; rest >> field;) fields.push_back(field);
  }
  unsigned long long utime = 0, stime = 0;
  auto number = [&](int n, unsigned long long* out) {
    const std::string& s = fields[static_cast<size_t>(n - 3)];
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (fields.size() < 13 || !number(14, &utime) || !number(15, &stime)) {
    *error = "cannot parse " + path;
    return std::nullopt;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::optional<double> ParseCpuSecondsMetric(std::string_view exposition) {
  static constexpr std::string_view kName = "process_cpu_seconds_total";
  size_t at = 0;
  while (at < exposition.size()) {
    size_t end = exposition.find('\n', at);
    if (end == std::string_view::npos) end = exposition.size();
    std::string_view line = exposition.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // "NAME VALUE" or "NAME{labels} VALUE" (comments start with '#').
    if (line.substr(0, kName.size()) != kName || line.size() == kName.size()) continue;
    line.remove_prefix(kName.size());
    if (line.front() == '{') {
      const size_t brace = line.find('}');
      if (brace == std::string_view::npos) continue;
      line.remove_prefix(brace + 1);
    }
    if (line.empty() || line.front() != ' ') continue;
    const std::string value(line.substr(line.find_first_not_of(' ')));
    char* stop = nullptr;
    const double v = std::strtod(value.c_str(), &stop);
    if (stop == value.c_str() || (*stop != '\0' && *stop != ' ')) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

namespace {

// The whole answer to "GET /metrics" from host:port; nullopt with `error` set on failure.
std::optional<std::string> HttpGetMetrics(const std::string& host_port, std::string* error) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) {
    *error = "expected HOST:PORT, got '" + host_port + "'";
    return std::nullopt;
  }
  const std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    *error = "cannot resolve " + host_port + ": " + ::gai_strerror(rc);
    return std::nullopt;
  }
  int fd = -1;
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const timeval timeout{10, 0};  // a daemon that accepts but never answers
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    *error = "cannot connect to " + host_port + ": " + why;
    return std::nullopt;
  }
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: " + host_port + "\r\nConnection: close\r\n\r\n";
  std::string response;
  bool ok = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  char buf[16384];
  ssize_t n = 0;
  while (ok && (n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<size_t>(n));
  if (n < 0) ok = false;
  why = std::strerror(errno);
  ::close(fd);
  if (!ok) {
    *error = "GET /metrics from " + host_port + " failed: " + why;
    return std::nullopt;
  }
  return response;
}

}  // namespace

std::optional<double> ScrapeCpuSeconds(const std::string& host_port, std::string* error) {
  auto response = HttpGetMetrics(host_port, error);
  if (!response) return std::nullopt;
  const std::string status = response->substr(0, response->find("\r\n"));
  if (status.rfind("HTTP/1.", 0) != 0 || status.size() < 12 || status.compare(9, 3, "200") != 0) {
    *error = "GET /metrics from " + host_port + " answered '" + status.substr(0, 80) +
             "', not HTTP 200 (is this esd's --http address?)";
    return std::nullopt;
  }
  const size_t body = response->find("\r\n\r\n");
  auto value = ParseCpuSecondsMetric(body == std::string::npos ? std::string_view{}
                                                               : std::string_view(*response).substr(body + 4));
  if (!value) {
    *error = "GET /metrics from " + host_port + " has no process_cpu_seconds_total (is this esd's --http address?)";
  }
  return value;
}

std::optional<double> CpuSource::Sample(std::string* error) const {
  std::string why;
  auto v = pid != 0 ? ReadProcessCpuSeconds(pid, &why) : ScrapeCpuSeconds(metrics, &why);
  if (!v) *error = (pid != 0 ? "--daemon-pid " + std::to_string(pid) : "--metrics " + metrics) + ": " + why;
  return v;
}

}  // namespace esbench
