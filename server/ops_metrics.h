// What /metrics reports beyond the store's own counters: appends and order commands by
// outcome, the latency of each RPC method, the last verify and backup, and how far behind
// the log each subscription is. Counted on the KJ thread (and the job threads), read on
// the HTTP thread: every member is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/metrics.h"
#include "server/rpc_latency.h"
#include "storage/histogram.h"
#include "storage/status.h"
#include "storage/store.h"

namespace esd::server {

// The outcome label of esd_appends_total for an append's result: "ok",
// "wrong_expected_version", or the RejectCode the client got, in snake case
// ("invalid_argument", "idempotency_conflict", "out_of_space", "overloaded", "unavailable"),
// or "stream_deleted"; the lifecycle calls (esd_lifecycle_calls_total) also "not_found".
std::string AppendOutcome(const storage::Status& s);

// When an admin job (verify, backup) last ended, and whether it succeeded.
class LastRun {
 public:
  void Record(bool success, std::chrono::system_clock::time_point at = std::chrono::system_clock::now());
  bool ran() const { return micros_.load() != 0; }
  double timestamp_seconds() const { return static_cast<double>(micros_.load()) / 1e6; }  // 0: never
  bool success() const { return success_.load(); }

 private:
  std::atomic<int64_t> micros_{0};  // since the epoch; 0: never ran
  std::atomic<bool> success_{false};
};

// The cursors of live subscriptions, for esd_subscription_lag_events. A subscription
// registers when it starts and unregisters before it goes; its cursor is an atomic it owns.
class SubscriptionCursors {
 public:
  // A $all subscription: `next_position` is the next $all position it will look at.
  void Register(const void* who, const std::atomic<uint64_t>* next_position);
  // A subscription to one stream: `next_version` is the next version of `stream` to send.
  void Register(const void* who, std::string stream, const std::atomic<uint64_t>* next_version);
  void Unregister(const void* who);
  // The most events any live subscription has yet to be sent ($all: durable events past its
  // cursor; one stream: that stream's events past its cursor); 0 with none.
  uint64_t MaxLag(const storage::Store& store) const;

 private:
  struct Cursor {
    std::string stream;  // empty: $all
    const std::atomic<uint64_t>* next;
  };
  mutable std::mutex mu_;
  std::map<const void*, Cursor> cursors_;
};

struct OpsMetrics {
  CounterFamily appends{std::vector<std::string>{"outcome"}};                 // EventStore.append calls answered
  std::atomic<uint64_t>& appends_ok = appends.At({"ok"});                    // its "ok", counted without a lock
  CounterFamily order_commands{std::vector<std::string>{"outcome", "rule"}};  // ok, rejected (by rule), conflict, failed
  std::atomic<uint64_t>& order_commands_ok = order_commands.At({"ok", ""});   // its "ok", counted without a lock
  // deleteStream, truncateStream, setStreamMetadata answered: call (delete_stream, ...) and
  // outcome (as AppendOutcome, or permission_denied).
  CounterFamily lifecycle_calls{std::vector<std::string>{"call", "outcome"}};
  CounterFamily streams_deleted{std::vector<std::string>{"kind"}};  // soft, hard: deletes acknowledged
  LastRun verify, backup;
  SubscriptionCursors subscriptions;
  RpcLatency rpc_latency;
};

}  // namespace esd::server
