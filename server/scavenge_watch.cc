#include "server/scavenge_watch.h"

#include "log/log.h"

namespace esd::server {

using State = storage::ScavengeStatus::State;

bool ScavengeEnded(const storage::ScavengeStatus& s) {
  return s.state == State::kFinished || s.state == State::kStopped || s.state == State::kFailed;
}

void ScavengeWatch::Note(const storage::ScavengeStatus& s) {
  if (s.state == State::kIdle) return;
  // A run's figures only grow: the last look at it holds them all.
  runs_[s.started_micros] = Figures{s.bytes_read, s.bytes_reclaimed, s.events_removed, s.segments_rewritten};
}

void ScavengeWatch::Started(const storage::ScavengeStatus& before, const storage::ScavengeStatus& after,
                            const std::string& who, const std::string& refusal) {
  {
    std::lock_guard lock(mu_);
    Note(before);
    if (refusal.empty()) Note(after);
  }
  if (!refusal.empty()) {
    log::Write(log::Level::kInfo, "scavenge not started: " + refusal, {{"by", who}});
    return;
  }
  // The run that ended before this one is logged now if the heartbeat had not yet.
  Poll(before);
  // Its figures come once its thread has looked at the segments; the end says them all.
  log::Write(log::Level::kInfo, "scavenge started", {{"by", who}});
}

void ScavengeWatch::StopAsked(const storage::ScavengeStatus& now, const std::string& who) {
  {
    std::lock_guard lock(mu_);
    Note(now);
  }
  log::Write(log::Level::kInfo, "scavenge asked to stop after the segment it is on",
             {{"by", who},
              {"state", storage::ScavengeStatus::StateName(now.state)},
              {"segments_done", now.segments_done},
              {"segments_total", now.segments_total}});
}

void ScavengeWatch::Poll(const storage::ScavengeStatus& now) {
  {
    std::lock_guard lock(mu_);
    Note(now);
  }
  if (!ScavengeEnded(now) || now.started_micros == end_logged_) return;
  end_logged_ = now.started_micros;
  const uint64_t micros = now.finished_micros > now.started_micros ? now.finished_micros - now.started_micros : 0;
  const double seconds = static_cast<double>(micros) / 1e6;
  const double mb_per_s = micros == 0 ? 0 : static_cast<double>(now.bytes_read) / static_cast<double>(micros);
  const log::Level level = now.state == State::kFailed ? log::Level::kError : log::Level::kInfo;
  std::string message = std::string("scavenge ") + storage::ScavengeStatus::StateName(now.state);
  if (now.state == State::kFailed) {
    message += ": " + now.error.ToString() + "; what it rewrote before stays rewritten, `esctl scavenge start` goes on";
  }
  log::Write(level, message,
             {{"segments_done", now.segments_done},
              {"segments_total", now.segments_total},
              {"segments_rewritten", now.segments_rewritten},
              {"bytes_read", now.bytes_read},
              {"bytes_reclaimed", now.bytes_reclaimed},
              {"events_removed", now.events_removed},
              {"seconds", seconds},
              {"read_mb_per_s", mb_per_s}});
}

ScavengeWatch::Totals ScavengeWatch::TotalsWith(const storage::ScavengeStatus& now) {
  std::lock_guard lock(mu_);
  Note(now);
  Totals t;
  t.running = now.state == State::kRunning || now.state == State::kStopping;
  t.runs = runs_.size();
  for (const auto& [started, f] : runs_) {
    t.bytes_read += f.bytes_read;
    t.bytes_reclaimed += f.bytes_reclaimed;
    t.events_removed += f.events_removed;
    t.segments_rewritten += f.segments_rewritten;
  }
  return t;
}

}  // namespace esd::server
