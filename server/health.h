// GET /health (is the daemon alive?) and GET /ready (should it be sent work?), answered on
// the HTTP thread from facts that other threads publish thread-safely.
//
// Alive: the HTTP thread answers (else there is no answer at all) and the KJ event loop,
// which runs every RPC, is turning. The loop beats a LoopHeartbeat every kHeartbeatEvery;
// when it has not beaten for kLoopStallLimit the daemon is not alive (503): the loop is
// stuck in a call that does not return, and only a restart helps.
//
// Ready: alive, and
//   - not shutting down (a graceful stop refuses new appends),
//   - the store has not failed (after an I/O error it takes no write until esd restarts),
//   - the last write did not fail for lack of space (this clears by itself with the first
//     append that succeeds once space is freed, so a client that retries sees it clear),
//   - the order projection is at most kReadyMaxProjectionLag events behind the durable
//     position, so that order queries answer from a read model that is nearly current. A
//     restart whose projection snapshot is old or missing is not ready until it catches up;
//   - the order projection has not stopped at damage: it would not move again, so this is
//     said at once, with the place and the commands that go on from there.
// Both answer a short JSON body: {"status":"ready"} or
// {"status":"not ready","reasons":["out of space: ...", ...]} (200 or 503).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "server/http.h"
#include "storage/store.h"

namespace esd::server {

inline constexpr std::chrono::seconds kHeartbeatEvery{1};
inline constexpr std::chrono::seconds kLoopStallLimit{10};
inline constexpr uint64_t kReadyMaxProjectionLag = 10'000;

// The event loop's last turn, as the loop saw it. Beat on the loop; read on any thread.
class LoopHeartbeat {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LoopHeartbeat(Clock::time_point now = Clock::now()) { Beat(now); }
  void Beat(Clock::time_point now = Clock::now()) {
    last_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }
  // How long ago the last beat was (zero if the clock says it is in the future).
  Clock::duration Silence(Clock::time_point now = Clock::now()) const {
    const Clock::duration d = now - Clock::time_point(Clock::duration(last_.load(std::memory_order_relaxed)));
    return d < Clock::duration::zero() ? Clock::duration::zero() : d;
  }

 private:
  std::atomic<Clock::rep> last_{0};
};

// What /health and /ready judge, gathered at one moment.
struct HealthFacts {
  std::chrono::steady_clock::duration loop_silence{};
  bool stopping = false;
  storage::WriteState write;
  uint64_t durable_position = 0;
  uint64_t projection_checkpoint = 0;
  // Where the order projection stopped at damage (ProjectionRunner::damage_text), or "".
  std::string projection_damage;
};

// From the store (thread-safe reads) and what the daemon publishes; any thread.
HealthFacts GatherHealthFacts(const storage::Store& store, const LoopHeartbeat& heartbeat,
                              uint64_t projection_checkpoint, bool stopping,
                              LoopHeartbeat::Clock::time_point now = LoopHeartbeat::Clock::now());

HttpResponse HealthResponse(const HealthFacts& facts);  // 200 {"status":"alive"} or 503
HttpResponse ReadyResponse(const HealthFacts& facts);   // 200 {"status":"ready"} or 503

}  // namespace esd::server
