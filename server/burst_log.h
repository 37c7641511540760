// How the daemon logs a failure that may come in bursts (an accept that fails, a TLS
// handshake that fails, a subscriber that fails a push): the first one at once, then at
// most one line per interval, each line with the number of failures since the previous
// one. A metric counts every failure, so nothing is lost by the lines left out, and a
// flood of bad clients cannot fill the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace esd::server {

class BurstLog {
 public:
  using Clock = std::chrono::steady_clock;
  BurstLog() : BurstLog(std::chrono::seconds(10)) {}
  explicit BurstLog(Clock::duration interval) : interval_(interval) {}
  BurstLog(const BurstLog&) = delete;
  BurstLog& operator=(const BurstLog&) = delete;

  // Call once per failure, from any thread. Returns how many failures the line to log now
  // should report (this one and those not logged since the last line), or 0: no line now.
  uint64_t Failed(Clock::time_point now = Clock::now()) {
    std::lock_guard lock(mu_);
    ++unlogged_;
    if (last_ && now - *last_ < interval_) return 0;
    last_ = now;
    const uint64_t n = unlogged_;
    unlogged_ = 0;
    return n;
  }

 private:
  const Clock::duration interval_;
  std::mutex mu_;
  std::optional<Clock::time_point> last_;
  uint64_t unlogged_ = 0;
};

}  // namespace esd::server
