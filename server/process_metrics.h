// The process collector that Prometheus' own client libraries export under the same names
// (process_cpu_seconds_total, process_resident_memory_bytes, ...), read from /proc/self on
// each scrape, and the free space of the data directory's filesystem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "server/metrics.h"

namespace esd::server {

struct ProcessFacts {
  double cpu_seconds = 0;         // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
};

// Parses the text of /proc/PID/stat. `ticks_per_second`: sysconf(_SC_CLK_TCK); `boot_time`:
// the btime line of /proc/stat (seconds since the epoch). nullopt when the text is not a
// stat line.
std::optional<ProcessFacts> ParseProcStat(std::string_view stat, long ticks_per_second, long page_size,
                                          double boot_time);

// Adds the process_* families; the ones that cannot be read (no /proc) are left out.
void AddProcessMetrics(MetricsText& m);

// Bytes an unprivileged writer may still use on the filesystem that holds `dir` (statvfs:
// f_bavail * f_frsize); nullopt when statvfs fails.
std::optional<uint64_t> FreeBytes(const std::filesystem::path& dir);

}  // namespace esd::server
