// How the daemon logs a failure that may come in bursts (an accept that fails, a TLS
// handshake that fails): the first one at once, then at most one line per interval, each
// line with the number of failures since the previous one. A metric counts every failure,
// so nothing is lost by the lines left out, and a flood of bad clients cannot fill the log.
#pragma once

#include <kj/time.h>
#include <kj/timer.h>

#include <cstdint>

namespace esd::server {

class BurstLog {
 public:
  // `timer` must outlive the BurstLog. KJ thread only.
  explicit BurstLog(kj::Timer& timer, kj::Duration interval = 10 * kj::SECONDS) : timer_(timer), interval_(interval) {}

  // Call once per failure. Returns how many failures the line logged now should report
  // (this one and those not logged since the last line), or 0: no line now.
  uint64_t Failed() {
    ++unlogged_;
    const kj::TimePoint now = timer_.now();
    KJ_IF_MAYBE(last, last_) {
      if (now - *last < interval_) return 0;
    }
    last_ = now;
    const uint64_t n = unlogged_;
    unlogged_ = 0;
    return n;
  }

 private:
  kj::Timer& timer_;
  kj::Duration interval_;
  kj::Maybe<kj::TimePoint> last_;
  uint64_t unlogged_ = 0;
};

}  // namespace esd::server
