// What the daemon says about scavenges (Store::StartScavenge, storage/scavenge.h): the log
// lines (who started one, who asked it to stop, how it ended and with what figures) and the
// counters of /metrics, summed over every run since the daemon started.
//
// The store's ScavengeStatus describes one run (the running one, or the last); the totals
// here remember each run by its start time and add up the last figures seen of each. Every
// start goes through Started(), which is given the status just before the new run replaces
// it, so the figures of a run that ended between two looks are not lost. The daemon calls
// Poll() from its once-a-second heartbeat, so an end is logged within about a second.
//
// Started, StopAsked and Poll: the KJ thread. Totals: any thread (the HTTP thread's /metrics).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "storage/store.h"

namespace esd::server {

class ScavengeWatch {
 public:
  struct Totals {
    bool running = false;  // state running or stopping
    uint64_t runs = 0;     // started since the daemon started
    uint64_t bytes_read = 0;
    uint64_t bytes_reclaimed = 0;
    uint64_t events_removed = 0;
    uint64_t segments_rewritten = 0;
  };

  // A start was asked for by `who` (e.g. "a session with the admin role"). `before`: the
  // store's status just before StartScavenge; `after`: just after it; `refusal`: why it did
  // not start ("" when it did). Logs the start (or the refusal).
  void Started(const storage::ScavengeStatus& before, const storage::ScavengeStatus& after, const std::string& who,
               const std::string& refusal);
  // `who` asked the running scavenge to stop; `now` is the status after asking.
  void StopAsked(const storage::ScavengeStatus& now, const std::string& who);
  // Logs the end of the run `now` describes, once, with its figures.
  void Poll(const storage::ScavengeStatus& now);
  // The counters, with `now` (the store's status at the call) counted in.
  Totals TotalsWith(const storage::ScavengeStatus& now);

 private:
  struct Figures {
    uint64_t bytes_read = 0, bytes_reclaimed = 0, events_removed = 0, segments_rewritten = 0;
  };
  void Note(const storage::ScavengeStatus& s);  // mu_ held

  std::mutex mu_;
  std::map<uint64_t, Figures> runs_;  // by started_micros; mu_
  uint64_t end_logged_ = 0;           // started_micros of the last run whose end was logged; KJ thread
};

// The run is over: finished, stopped or failed.
bool ScavengeEnded(const storage::ScavengeStatus& s);

}  // namespace esd::server
