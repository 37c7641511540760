// esctl's progress display for long work (verify, replay, backup), online and offline: on a
// terminal (stderr) one bar redrawn in place with percent, rate and ETA; otherwise a plain
// line at every tenth, so a log file stays short. Always ends with a line at 100% when
// Finish() is called (or a report says done == total).
#pragma once

#include <chrono>
#include <cstdint>

namespace esd::esctl {

class Progress {
 public:
  enum class Unit { kBytes, kEvents };
  Progress(const char* what, Unit unit);

  void operator()(uint64_t done, uint64_t total);
  // The work is complete: shows 100% of what was last reported, unless that was shown.
  void Finish();

 private:
  using Clock = std::chrono::steady_clock;
  const char* what_;
  const Unit unit_;
  const bool tty_;
  const Clock::time_point start_;
  int next_tenth_ = 1;
  uint64_t last_done_ = 0;
  bool finished_ = false;
};

}  // namespace esd::esctl
