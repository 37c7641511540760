#include "tools/esctl_progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

namespace esd::esctl {

namespace {

// "12.3 MB" or "12.3k events", for a count in `unit`.
std::string Amount(double n, Progress::Unit unit) {
  char buf[32];
  if (unit == Progress::Unit::kBytes) {
    std::snprintf(buf, sizeof(buf), "%.1f MB", n / 1e6);
  } else if (n >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%.2fM events", n / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f events", n);
  }
  return buf;
}

}  // namespace

Progress::Progress(const char* what, Unit unit)
    : what_(what), unit_(unit), tty_(::isatty(2) == 1), start_(Clock::now()) {}

void Progress::operator()(uint64_t done, uint64_t total) {
  if (finished_ || total == 0) return;  // no total yet: nothing to show (Finish ends it)
  if (done > total) total = done;  // a report from a moving target (the log grew)
  last_done_ = done;
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  const double frac = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  const std::string rate_text = Amount(rate, unit_) + "/s";
  if (tty_) {
    const int width = 30, filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r%s [%s%s] %3.0f%%  %s  ETA %.0fs ", what_, std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), frac * 100, rate_text.c_str(), eta);
    if (done >= total) std::fputc('\n', stderr);
  } else if (frac * 10 >= next_tenth_ || done >= total) {
    std::fprintf(stderr, "%s: %.0f%% (%s of %s, %s)\n", what_, frac * 100, Amount(done, unit_).c_str(),
                 Amount(total, unit_).c_str(), rate_text.c_str());
    next_tenth_ = static_cast<int>(frac * 10) + 1;
  }
  finished_ = done >= total;
}

void Progress::Finish() {
  if (!finished_) (*this)(last_done_, last_done_);
}

}  // namespace esd::esctl
