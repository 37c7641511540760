#include "server/health.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace esd::server {
namespace {

constexpr char kJson[] = "application/json";

long long WholeSeconds(std::chrono::steady_clock::duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

// Empty when the loop turns.
std::string LoopStall(const HealthFacts& f) {
  if (f.loop_silence < kLoopStallLimit) return "";
  return "the event loop has not turned for " + std::to_string(WholeSeconds(f.loop_silence)) + " s (limit " +
         std::to_string(kLoopStallLimit.count()) + " s): RPC calls are not being answered; restart esd";
}

HttpResponse Answer(bool ok, const char* good, const char* bad, const std::vector<std::string>& reasons) {
  nlohmann::json body;
  body["status"] = ok ? good : bad;
  if (!ok) body["reasons"] = reasons;
  return HttpResponse{ok ? 200 : 503, kJson, body.dump() + "\n"};
}

}  // namespace

HealthFacts GatherHealthFacts(const storage::Store& store, const LoopHeartbeat& heartbeat,
                              uint64_t projection_checkpoint, bool stopping, LoopHeartbeat::Clock::time_point now) {
  HealthFacts f;
  f.loop_silence = heartbeat.Silence(now);
  f.stopping = stopping;
  f.write = store.write_state();
  f.durable_position = store.DurablePosition().value;
  f.projection_checkpoint = projection_checkpoint;
  return f;
}

HttpResponse HealthResponse(const HealthFacts& facts) {
  const std::string stall = LoopStall(facts);
  return Answer(stall.empty(), "alive", "not alive", {stall});
}

HttpResponse ReadyResponse(const HealthFacts& f) {
  std::vector<std::string> reasons;
  if (std::string stall = LoopStall(f); !stall.empty()) reasons.push_back(std::move(stall));
  if (f.stopping) reasons.push_back("shutting down: new appends are refused");
  if (!f.write.failed.ok()) reasons.push_back("the store has failed: " + f.write.failed.message());
  if (!f.write.out_of_space.ok()) {
    reasons.push_back("out of space: " + f.write.out_of_space.message() +
                      " (clears with the first append that succeeds once space is freed)");
  }
  const uint64_t lag = f.durable_position > f.projection_checkpoint ? f.durable_position - f.projection_checkpoint : 0;
  if (lag > kReadyMaxProjectionLag) {
    reasons.push_back("the order projection is " + std::to_string(lag) + " events behind the log (at most " +
                      std::to_string(kReadyMaxProjectionLag) +
                      " for ready): order queries would answer from an old read model");
  }
  if (!f.projection_damage.empty()) {
    reasons.push_back("the order projection stopped at damaged bytes of the log: " + f.projection_damage +
                      "; order queries answer as of position " + std::to_string(f.projection_checkpoint) +
                      ". Stop esd, then see what is damaged with esctl --data-dir DIR verify and move it aside "
                      "with esctl --data-dir DIR salvage (README, \"When the log is damaged\")");
  }
  return Answer(reasons.empty(), "ready", "not ready", reasons);
}

}  // namespace esd::server
