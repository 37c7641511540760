#include "tools/esctl_scavenge.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "tools/esctl_exit.h"
#include "tools/esctl_output.h"
#include "tools/esctl_progress.h"
#include "tools/esctl_text.h"

namespace esd::esctl {

namespace {

void Print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }
void Note(const std::string& text) { std::fprintf(stderr, "esctl: %s\n", text.c_str()); }

// How often `scavenge start` asks how far it is, while it follows one.
constexpr std::chrono::milliseconds kPollEvery{250};

constexpr char kHowToFollow[] = "see it with `esctl scavenge status`, stop it with `esctl scavenge stop`";

uint64_t NowMicros() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string Mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

// MB/s of segments read, from the start to its end (or `now`); 0 before any time passed.
double RateMbPerSecond(const client::ScavengeStatus& s, uint64_t now_micros) {
  const uint64_t end = s.finished_micros != 0 ? s.finished_micros : now_micros;
  if (s.started_micros == 0 || end <= s.started_micros) return 0;
  return static_cast<double>(s.bytes_read) / static_cast<double>(end - s.started_micros);  // bytes/us = MB/s
}

// One line: "finished: 3 of 3 segments, 2 rewritten; 120.0 MB read, 60.0 MB reclaimed, ..."
std::string Summary(const client::ScavengeStatus& s, uint64_t now_micros) {
  char rate[32];
  std::snprintf(rate, sizeof(rate), "%.1f MB/s", RateMbPerSecond(s, now_micros));
  return s.state + ": " + std::to_string(s.segments_done) + " of " + std::to_string(s.segments_total) +
         " segments, " + std::to_string(s.segments_rewritten) + " rewritten; " + Mb(s.bytes_read) + " read, " +
         Mb(s.bytes_reclaimed) + " reclaimed, " + std::to_string(s.events_removed) + " removed events dropped (" +
         rate + ")";
}

volatile std::sig_atomic_t g_stop = 0;
void OnStopSignal(int) { g_stop = 1; }

// Follows a running scavenge until it ends (or Ctrl-C): the figures as a progress bar in
// bytes read. Returns the exit code.
int Follow(client::Client& c, client::ScavengeStatus s, bool json) {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  Progress progress("scavenge", Progress::Unit::kBytes);
  while (s.running() && !g_stop) {
    if (s.bytes_total > 0) progress(s.bytes_read, s.bytes_total);
    std::this_thread::sleep_for(kPollEvery);  // esd has no push of its progress: ask again
    s = c.GetScavengeStatus();
  }
  const bool interrupted = g_stop && s.running();
  if (interrupted) {
    std::fputc('\n', stderr);
  } else {
    if (s.state == "finished") progress.Finish();
    const uint64_t now = NowMicros();
    if (json) Print(ScavengeText(s, now, true));
    else Print("scavenge " + Summary(s, now) + "\n");
  }
  if (const std::string note = FollowEndNote(s, interrupted); !note.empty()) Note(note);
  return s.state == "failed" && !interrupted ? kExitFailure : kExitOk;
}

int Start(const Invocation& inv, const Connector& connect) {
  const bool json = inv.global.json;
  auto c = connect();
  const auto r = c->ScavengeStart();
  if (!r.started) {
    if (json) {
      Print(JsonObject().String("result", "not-started").String("reason", r.reason).String("state", r.status.state).Done() +
            "\n");
    }
    Note("scavenge not started: " + r.reason +
         (r.status.running() ? std::string("; one is running: ") + kHowToFollow : std::string()));
    return kExitNotDone;
  }
  if (inv.Has("no-wait")) {
    if (json) {
      Print(ScavengeText(r.status, NowMicros(), true));
    } else {
      // Its figures come once its thread has looked at the segments: not in this answer.
      Print(std::string("scavenge started; it runs in esd: ") + kHowToFollow + "\n");
    }
    return kExitOk;
  }
  std::fprintf(stderr, "scavenging the sealed segments; the daemon keeps serving meanwhile (Ctrl-C stops "
                       "following, not the scavenge)...\n");
  return Follow(*c, r.status, json);
}

int Status(const Invocation& inv, const Connector& connect) {
  Print(ScavengeText(connect()->GetScavengeStatus(), NowMicros(), inv.global.json));
  return kExitOk;
}

int Stop(const Invocation& inv, const Connector& connect) {
  const auto r = connect()->ScavengeStop();
  if (inv.global.json) {
    Print(JsonObject().Bool("wasRunning", r.was_running).String("state", r.status.state).Done() + "\n");
  } else if (r.was_running) {
    Print(StopText(r.was_running, r.status.state));
  }
  if (!r.was_running) Note(StopText(r.was_running, r.status.state));
  return kExitOk;
}

}  // namespace

std::string FollowEndNote(const client::ScavengeStatus& s, bool interrupted) {
  if (interrupted) return std::string("stopped following; the scavenge goes on in esd: ") + kHowToFollow;
  if (s.state == "failed") {
    return "the scavenge failed: " + s.error +
           "; what it rewrote before stays rewritten. See the esd log, then run `esctl scavenge start` again";
  }
  return "";
}

std::string StopText(bool was_running, const std::string& state) {
  if (was_running) {
    return "asked the scavenge to stop after the segment it is on; what it rewrote stays rewritten. `esctl scavenge "
           "status` says when it has stopped\n";
  }
  return "no scavenge is running (the last: " + state + "); nothing to stop";
}

std::string ScavengeText(const client::ScavengeStatus& s, uint64_t now_micros, bool json) {
  const double rate = RateMbPerSecond(s, now_micros);
  if (json) {
    JsonObject o;
    o.String("state", s.state)
        .Time("startedAt", s.started_micros)
        .Time("finishedAt", s.finished_micros)
        .Number("segmentsTotal", s.segments_total)
        .Number("segmentsDone", s.segments_done)
        .Number("segmentsRewritten", s.segments_rewritten)
        .Number("bytesTotal", s.bytes_total)
        .Number("bytesRead", s.bytes_read)
        .Number("bytesReclaimed", s.bytes_reclaimed)
        .Number("eventsRemoved", s.events_removed)
        .Real("rateMBps", rate)
        .Number("readRateCap", s.read_rate_cap);
    if (s.error.empty()) o.Null("error");
    else o.String("error", s.error);
    return o.Done() + "\n";
  }
  std::string out;
  auto row = [&out](const std::string& name, const std::string& value) {
    out += name + std::string(name.size() < 16 ? 16 - name.size() : 1, ' ') + value + "\n";
  };
  row("state", s.state == "idle" ? "idle (none since esd started; `esctl scavenge start` starts one)" : s.state);
  if (s.state == "idle") return out;
  row("started", FormatTimestamp(s.started_micros));
  row("finished", s.finished_micros == 0 ? "-" : FormatTimestamp(s.finished_micros));
  row("segments", std::to_string(s.segments_done) + " of " + std::to_string(s.segments_total) + " done, " +
                      std::to_string(s.segments_rewritten) + " rewritten");
  const int percent = s.bytes_total == 0 ? 100 : static_cast<int>(100.0 * static_cast<double>(s.bytes_read) /
                                                                  static_cast<double>(s.bytes_total));
  row("read", Mb(s.bytes_read) + " of " + Mb(s.bytes_total) + " (" + std::to_string(percent) + "%)");
  row("reclaimed", Mb(s.bytes_reclaimed) + " (" + std::to_string(s.bytes_reclaimed) + " bytes)");
  row("events removed", std::to_string(s.events_removed));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB/s", rate);
  row("rate", buf);
  if (s.read_rate_cap != 0) {
    row("read cap", Mb(s.read_rate_cap) + "/s (esd --scavenge-max-read-rate " + std::to_string(s.read_rate_cap) + ")");
  }
  if (!s.error.empty()) row("error", s.error);
  return out;
}

int RunScavenge(const Invocation& inv, const Connector& connect) {
  if (inv.command == "scavenge start") return Start(inv, connect);
  if (inv.command == "scavenge status") return Status(inv, connect);
  if (inv.command == "scavenge stop") return Stop(inv, connect);
  throw UsageError("unknown command '" + inv.command + "'");
}

}  // namespace esd::esctl
