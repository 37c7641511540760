// A log line per burst of a routine failure (an accept that fails, a subscriber that fails
// a push, a TLS handshake that fails): the first one is written, the rest within `interval`
// are only counted and their number is told with the next line that is written. So a
// client that fails a thousand times a second costs the log one line per interval, and
// nothing goes unmentioned. Any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

namespace esd::server {

class BurstLog {
 public:
  using Clock = std::chrono::steady_clock;
  BurstLog() : BurstLog(std::chrono::seconds(10)) {}
  explicit BurstLog(Clock::duration interval, std::FILE* out = stderr) : interval_(interval), out_(out) {}
  BurstLog(const BurstLog&) = delete;
  BurstLog& operator=(const BurstLog&) = delete;

  // Writes "esd: LINE" (plus how many were held back since the last written line) unless a
  // line was written less than `interval` before `now`; returns whether it wrote.
  bool Log(const std::string& line, Clock::time_point now = Clock::now());

 private:
  const Clock::duration interval_;
  std::FILE* const out_;
  std::mutex mu_;
  std::optional<Clock::time_point> last_;
  uint64_t held_back_ = 0;
};

}  // namespace esd::server
