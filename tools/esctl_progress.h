// esctl's progress display for long work (verify, replay, backup), online and offline: on a
// terminal (stderr) one bar redrawn in place with percent, rate and ETA; otherwise a plain
// line at every tenth, so a log file stays short. Always ends with a line at 100% when
// Finish() is called (or a report says done == total).
//
// The bar's line fits the terminal: its width is asked at every redraw (TIOCGWINSZ on
// stderr, else $COLUMNS, else 80), the bar takes what the text leaves, and on a terminal
// too narrow for the text the line is cut, never wrapped (a wrapped line would not be
// redrawn in place but repeated).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace esd::esctl {

class Progress {
 public:
  enum class Unit { kBytes, kEvents };
  // To stderr, a bar when stderr is a terminal.
  Progress(const char* what, Unit unit);
  // For tests: to `out`, a bar when `tty`, in `columns()` columns.
  Progress(const char* what, Unit unit, std::FILE* out, bool tty, std::function<int()> columns);

  void operator()(uint64_t done, uint64_t total);
  // The work is complete: shows 100% of what was last reported, unless that was shown.
  void Finish();

  // The bar's line (without "\r") for `columns` columns: at most columns - 1 characters, so
  // that the cursor never reaches the last column and the terminal does not wrap.
  static std::string BarLine(const std::string& what, double fraction, const std::string& rate, double eta_seconds,
                             int columns);

 private:
  using Clock = std::chrono::steady_clock;
  const char* what_;
  const Unit unit_;
  std::FILE* const out_;
  const bool tty_;
  const std::function<int()> columns_;
  const Clock::time_point start_;
  int next_tenth_ = 1;
  uint64_t last_done_ = 0;
  bool finished_ = false;
};

// The width of the terminal on file descriptor `fd`: TIOCGWINSZ, else $COLUMNS, else 80.
int TerminalColumns(int fd);

}  // namespace esd::esctl
