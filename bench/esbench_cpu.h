// esbench: the daemon's CPU time, sampled before and after the measured window so that the
// report can say how much CPU the daemon spent per event. Two sources:
//   --daemon-pid PID     a daemon on this machine: utime + stime of /proc/PID/stat, which for
//                        a process (the thread-group leader) sums all of its threads.
//   --metrics HOST:PORT  esd's HTTP address (esd --http): process_cpu_seconds_total from
//                        GET /metrics (esd reads its own /proc/self/stat, so the same count).
// Both count in clock ticks (10 ms on Linux): over a window of seconds that is well under 1%.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace esbench {

// utime + stime of process `pid` in seconds; nullopt with `error` set when /proc/PID/stat
// cannot be read or parsed (no such process).
std::optional<double> ReadProcessCpuSeconds(pid_t pid, std::string* error);

// The value of the sample `process_cpu_seconds_total` in a Prometheus text exposition;
// nullopt when it is not there (or not a number).
std::optional<double> ParseCpuSecondsMetric(std::string_view exposition);

// GET http://HOST:PORT/metrics (plain TCP, HTTP/1.0, Connection: close; 10 s for an answer)
// and ParseCpuSecondsMetric of the body. nullopt with `error` set when the address does not
// answer, the answer is not HTTP 200, or it has no process_cpu_seconds_total.
std::optional<double> ScrapeCpuSeconds(const std::string& host_port, std::string* error);

// Where DaemonCpu reads from: at most one of the two is set.
struct CpuSource {
  pid_t pid = 0;        // --daemon-pid, 0: not set
  std::string metrics;  // --metrics HOST:PORT, empty: not set
  bool enabled() const { return pid != 0 || !metrics.empty(); }
  const char* name() const { return pid != 0 ? "pid" : "metrics"; }
  // One sample from whichever source is set; on failure the error names the flag and value.
  std::optional<double> Sample(std::string* error) const;
};

}  // namespace esbench
