#include "server/process_metrics.h"

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "storage/file.h"

namespace esd::server {
namespace {

std::string ReadAll(const char* path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::optional<double> BootTime() {
  std::istringstream stat(ReadAll("/proc/stat"));
  std::string line;
  while (std::getline(stat, line)) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return std::nullopt;
}

}  // namespace

std::optional<ProcessFacts> ParseProcStat(std::string_view stat, long ticks_per_second, long page_size,
                                          double boot_time) {
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so fields count from the
  // last ')'. Field 3 (state) is the first after it.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  std::istringstream rest{std::string(stat.substr(close + 1))};
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  auto field = [&](int n) { return std::stod(fields.at(static_cast<size_t>(n - 3))); };  // proc(5) numbering
  if (fields.size() < 22) return std::nullopt;
  try {
    ProcessFacts p;
    p.cpu_seconds = (field(14) + field(15)) / static_cast<double>(ticks_per_second);  // utime + stime
    p.start_time_seconds = boot_time + field(22) / static_cast<double>(ticks_per_second);
    p.virtual_bytes = field(23);
    p.resident_bytes = field(24) * static_cast<double>(page_size);
    return p;
  } catch (const std::exception&) {  // a field that is not a number
    return std::nullopt;
  }
}

void AddProcessMetrics(MetricsText& m) {
  const auto boot = BootTime();
  const auto p = ParseProcStat(ReadAll("/proc/self/stat"), ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE),
                               boot.value_or(0));
  if (p) {
    m.Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", p->cpu_seconds);
    m.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p->resident_bytes);
    m.Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p->virtual_bytes);
    if (boot) {
      m.Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              p->start_time_seconds);
    }
  }
  if (const auto fds = storage::OpenFileCount()) {
    m.Gauge("process_open_fds", "Number of open file descriptors.", static_cast<double>(*fds));
  }
  if (rlimit r{}; ::getrlimit(RLIMIT_NOFILE, &r) == 0) {
    m.Gauge("process_max_fds", "Maximum number of open file descriptors.",
            r.rlim_cur == RLIM_INFINITY ? std::numeric_limits<double>::infinity() : static_cast<double>(r.rlim_cur));
  }
}

std::optional<uint64_t> FreeBytes(const std::filesystem::path& dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return std::nullopt;
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

}  // namespace esd::server
