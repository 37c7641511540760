// What the RPC services share: the store, the durable-position notifier, the limits of a
// request, and the counters /metrics reports. Lives on the KJ thread; counters are atomic
// because the HTTP thread reads them.
#pragma once

#include <kj/timer.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "domain/order_commands.h"
#include "server/append_completions.h"
#include "server/burst_log.h"
#include "server/config.h"
#include "server/damage_log.h"
#include "server/notifier.h"
#include "server/ops_metrics.h"
#include "server/scavenge_watch.h"
#include "storage/store.h"
#include "storage/stream_page.h"

namespace esd::server {

// A read returns at most this many events and, past the first event, at most
// kMaxReadBytes of them; the caller continues from where it ended. A filtered $all read
// scans at most kMaxScanPerRead events per call, so a selective filter cannot keep the
// event loop busy for long. (The same pages as esctl's offline reads: storage/stream_page.h.)
inline constexpr uint32_t kMaxReadCount = storage::kPageEvents;
inline constexpr uint64_t kMaxReadBytes = storage::kPageBytes;
inline constexpr uint64_t kMaxScanPerRead = storage::kPageScan;
// A filter names at most this many event types, each at most kMaxFilterTextBytes long (as
// an event type or a stream name may be); a stream prefix is at most that long too. A longer
// request is broken (an exception naming the limit): a filter this long matches nothing
// that could have been written, and each type is compared with every event scanned.
inline constexpr size_t kMaxFilterTypes = 64;
inline constexpr size_t kMaxFilterTextBytes = 255;
// Events per push to a subscriber, and bytes: past the first event, a push stays below
// this, far under the receiver's message size limit even with the largest events.
inline constexpr uint32_t kSubscriptionBatch = 2048;  // ~27 us of call overhead, spread thin
inline constexpr uint64_t kSubscriptionBatchBytes = 1u << 20;

// About what an event takes in a message; for the size caps above.
inline uint64_t WireSize(const storage::EventView& e) { return storage::PageBytes(e); }

struct ServerCounters {
  std::atomic<uint32_t> connections{0};
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_refused{0};  // past --max-connections
  std::atomic<uint64_t> accept_errors{0};  // RPC and HTTP listeners; each was retried
  std::atomic<uint64_t> tls_handshake_failures{0};  // TlsAcceptor says which count
  std::atomic<uint64_t> login_timeouts{0};  // closed under --auth: no login within --login-timeout
  std::atomic<uint32_t> subscriptions{0};
  std::atomic<uint64_t> subscribers_failed{0};  // subscriptions ended because a push failed
  // Times a framed connection stopped being read: frames::MAX_IN_FLIGHT of its requests
  // were unanswered (server/framed_connection.h).
  std::atomic<uint64_t> framed_reads_paused{0};
};

// A subscription as the daemon sees it at shutdown.
class LiveSubscription {
 public:
  // Stops the pushes and tells the subscriber why; resolves when that was delivered.
  virtual kj::Promise<void> End(std::string reason) = 0;

 protected:
  ~LiveSubscription() = default;
};

class ProjectionRunner;
class ConnectionState;

// Long jobs off the event loop (backups, verifies, snapshot reads), on at most kMaxThreads
// threads: more jobs wait their turn in order, so a client pipelining many calls gets a
// queue, not a thread each. Threads start when there is work and end when there is none,
// so an idle daemon holds none; JoinAll (and the destructor) wait for every job queued.
// Start and JoinAll: KJ thread only.
class OffLoopJobs {
 public:
  static constexpr int kMaxThreads = 4;
  OffLoopJobs() = default;
  OffLoopJobs(const OffLoopJobs&) = delete;
  OffLoopJobs& operator=(const OffLoopJobs&) = delete;
  ~OffLoopJobs() { JoinAll(); }

  void Start(std::function<void()> job);
  void JoinAll();  // waits for every job to end

 private:
  struct Thread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> ended;  // left Work(): joined at the next Start
  };
  void Work();  // a thread's loop: jobs until there are none

  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
  int working_ = 0;              // threads in Work(); at most kMaxThreads
  std::vector<Thread> threads_;  // KJ thread only
};

struct ServerContext {
  storage::Store& store;
  DurableNotifier& notifier;
  AppendCompletions& append_completions;  // AppendOnLoop's results come back through it
  const Config& config;
  domain::OrderCommands& orders;
  ProjectionRunner& projection;
  kj::Timer& timer;
  DamageLog& damage_log;  // every read path that meets damage reports it here
  BurstLog subscriber_failures_log{};
  BurstLog ignored_snapshots_log{};  // orders' snapshots found and not used
  // The framed protocol's client faults (server/framed_connection.h): connections closed for
  // a frame they could not have meant, and requests refused (as a failed RPC call is).
  BurstLog framed_protocol_errors_log{};
  BurstLog framed_refused_requests_log{};
  ServerCounters counters{};
  OpsMetrics ops{};  // what /metrics adds beyond the counters above
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::set<LiveSubscription*> subscriptions{};  // KJ thread only
  std::set<ConnectionState*> connections{};    // KJ thread only; each registers itself
  // Set at a graceful stop: new appends and subscriptions are refused (unavailable) while
  // the appends already in flight finish. KJ thread only.
  bool stopping = false;
  uint64_t appends_in_flight = 0;
  // Fulfilled (and reset) by AppendOnLoop once appends_in_flight is back to 0 and the last
  // answer has been handed to its connection: see WhenAppendsAnswered.
  kj::Own<kj::PromiseFulfiller<void>> appends_answered{};
  OffLoopJobs jobs{};
  ScavengeWatch scavenge_watch{};  // scavenges' log lines and /metrics totals
};

// Resolves once no append (or order command's append) is waiting for the writer and every
// answer to one has been queued on its connection (ConnectionState::WhenFlushed tells when
// it has left). KJ thread only; one waiter at a time (the graceful stop).
kj::Promise<void> WhenAppendsAnswered(ServerContext& ctx);

// Appends through the store's writer thread and brings the result back to this event loop
// (the request's bytes must already be copied into `events`). The append counts in
// ctx.appends_in_flight until it is answered or its caller is gone (cancelled). The result
// is boxed: g++ 12 misreads a std::variant inside kj's ExceptionOr.
kj::Promise<kj::Own<storage::AppendResult>> AppendOnLoop(ServerContext& ctx, std::string stream,
                                                         storage::ExpectedVersion expected,
                                                         std::vector<storage::EventData> events);
kj::Promise<kj::Own<storage::AppendResult>> AppendOnLoop(ServerContext& ctx, std::string stream,
                                                         storage::ExpectedVersion expected,
                                                         storage::PackedEvents events);

// The same for any write that answers through an AppendCallback on the writer thread (the
// lifecycle calls: Store::DeleteStream, TruncateStream, SetStreamMetadata): `start` is given
// the callback to pass on, and must hand it to the store (which calls it exactly once).
kj::Promise<kj::Own<storage::AppendResult>> WriteOnLoop(ServerContext& ctx,
                                                        const std::function<void(storage::AppendCallback)>& start);

// Stream prefix AND event type; empty parts match everything.
struct EventFilter {
  std::string stream_prefix;
  std::vector<std::string> types;
  bool Matches(const storage::EventView& e) const;
  bool MatchesAll() const { return stream_prefix.empty() && types.empty(); }
  // Without types, the stream alone decides (MatchesStream).
  bool ByStreamOnly() const { return types.empty(); }
  bool MatchesStream(std::string_view stream) const { return stream.starts_with(stream_prefix); }
};

}  // namespace esd::server
