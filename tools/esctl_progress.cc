#include "tools/esctl_progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

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

// Narrower than this, the bar is left out and only the figures are shown.
constexpr int kMinBar = 10;
// Wider than this, the bar stops growing: a 200-column bar tells no more than a 40-column one.
constexpr int kMaxBar = 40;

}  // namespace

int TerminalColumns(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS")) {
    int n = 0;
    const char* end = env + std::strlen(env);
    if (auto [p, ec] = std::from_chars(env, end, n); ec == std::errc() && p == end && n > 0) return n;
  }
  return 80;
}

std::string Progress::BarLine(const std::string& what, double fraction, const std::string& rate, double eta_seconds,
                              int columns) {
  char figures[96];
  std::snprintf(figures, sizeof(figures), " %3.0f%%  %s  ETA %.0fs", fraction * 100, rate.c_str(), eta_seconds);
  const int room = std::max(columns - 1, 0);  // the last column is never written
  const int text = static_cast<int>(what.size() + 3 + std::strlen(figures));  // "what [" ... "]" figures
  const int bar = std::min(room - text, kMaxBar);
  std::string line;
  if (bar >= kMinBar) {
    const int filled = std::clamp(static_cast<int>(fraction * bar), 0, bar);
    line = what + " [" + std::string(filled, '#') + std::string(bar - filled, ' ') + "]" + figures;
  } else {
    line = what + ":" + figures;
  }
  if (static_cast<int>(line.size()) > room) line.resize(room);
  return line;
}

Progress::Progress(const char* what, Unit unit)
    : Progress(what, unit, stderr, ::isatty(2) == 1, [] { return TerminalColumns(2); }) {}

Progress::Progress(const char* what, Unit unit, std::FILE* out, bool tty, std::function<int()> columns)
    : what_(what), unit_(unit), out_(out), tty_(tty), columns_(std::move(columns)), start_(Clock::now()) {}

void Progress::operator()(uint64_t done, uint64_t total) {
  if (finished_ || total == 0) return;  // no total yet: nothing to show (Finish ends it)
  if (done > total) total = done;  // a report from a moving target (the log grew)
  last_done_ = done;
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  const double frac = static_cast<double>(done) / static_cast<double>(total);
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  const std::string rate_text = Amount(rate, unit_) + "/s";
  if (tty_) {
    // "\r" then the line, then clear to the end of the line: a shorter line (the terminal
    // was narrowed) leaves nothing of the last one behind.
    std::fprintf(out_, "\r%s\x1b[K", BarLine(what_, frac, rate_text, eta, columns_()).c_str());
    if (done >= total) std::fputc('\n', out_);
  } else if (frac * 10 >= next_tenth_ || done >= total) {
    std::fprintf(out_, "%s: %.0f%% (%s of %s, %s)\n", what_, frac * 100, Amount(done, unit_).c_str(),
                 Amount(total, unit_).c_str(), rate_text.c_str());
    next_tenth_ = static_cast<int>(frac * 10) + 1;
  }
  std::fflush(out_);
  finished_ = done >= total;
}

void Progress::Finish() {
  if (!finished_) (*this)(last_done_, last_done_);
}

}  // namespace esd::esctl
