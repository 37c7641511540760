#include "server/daemon.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "log/log.h"
#include "server/burst_log.h"
#include "server/connection.h"
#include "server/context.h"
#include "server/framed_connection.h"
#include "server/health.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/notifier.h"
#include "server/process_metrics.h"
#include "server/projection_runner.h"
#include "server/sd_notify.h"
#include "server/session.h"
#include "server/tls_acceptor.h"
#include "protocol/socket_stream.h"
#include "protocol/transport.h"
#include "storage/file.h"
#include "version/version.h"

namespace esd::server {

namespace {

// Gives in-flight calls this long to be answered at a graceful stop.
constexpr auto kDrainTimeout = 5 * kj::SECONDS;

class ErrorHandler final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    if (e.getType() != kj::Exception::Type::DISCONNECTED) log::Warn("a connection failed: {}", e.getDescription().cStr());
  }
};

// What KJ and Cap'n Proto log on this thread (KJ_LOG: a failed task, an RPC protocol
// error) goes into our log, in its format, instead of straight to stderr. Other threads
// (the writer, the HTTP thread, jobs) do not use KJ_LOG.
class KjLogToOurs final : public kj::ExceptionCallback {
 public:
  void logMessage(kj::LogSeverity severity, const char* file, int line, int context_depth,
                  kj::String&& text) override {
    (void)context_depth;
    log::Level level = log::Level::kError;
    switch (severity) {
      case kj::LogSeverity::INFO: level = log::Level::kInfo; break;
      case kj::LogSeverity::WARNING: level = log::Level::kWarn; break;
      case kj::LogSeverity::ERROR:
      case kj::LogSeverity::FATAL: level = log::Level::kError; break;
      case kj::LogSeverity::DBG: level = log::Level::kDebug; break;
    }
    std::string message(text.cStr());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    log::Write(level, message, {{"source", std::string(file) + ":" + std::to_string(line)}});
  }
};

// What the store says as it runs (storage::EventListener), in the log. On the writer
// thread, after the group's appends are answered.
class StoreEventsToLog final : public storage::EventListener {
 public:
  explicit StoreEventsToLog(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  void OnOutOfSpace(const storage::Status& why) override {
    log::Error("the disk of {} is full: appends fail with 'out of space' until space is freed; reads go on ({})",
               data_dir_, why.ToString());
  }
  void OnSpaceAgain() override { log::Info("disk space is back: appends are written again"); }
  void OnSlowSync(uint64_t micros) override {
    // One line per 10 s at most: a disk that is slow is slow for every group.
    if (const uint64_t n = slow_syncs_.Failed()) {
      log::Write(log::Level::kWarn,
                 fmt::format("a group commit's fdatasync took {} ms (slow: 100 ms or more); {} such since the last "
                             "such line; esd_fsync_seconds has them all",
                             micros / 1000, n),
                 {{"fsync_micros", micros}});
    }
  }
  void OnWritesStopped(const storage::Status& why) override {
    log::Error("the store takes no more writes: {}; reads go on. Stop esd and start it again to recover",
               why.ToString());
  }

 private:
  const std::string data_dir_;
  BurstLog slow_syncs_;
};

uint64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
}

// What start-up says about the daemon's setting: the flags that change how it stores and
// whom it serves.
void LogStart(const Config& config) {
  log::Write(log::Level::kInfo, "starting",
             {{"version", std::string(version::Version())},
              {"data", config.data_dir},
              {"listen", config.listen},
              {"http", config.http},
              {"fsync", config.fsync.ToString()},
              {"segment_size", config.segment_size},
              {"max_event_size", config.max_event_size},
              {"snapshot_every", config.snapshot_every},
              {"max_connections", config.max_connections},
              {"tcp_keepalive", config.tcp_keepalive},
              {"login_timeout", config.login_timeout},
              {"scavenge_max_read_rate", config.scavenge_max_read_rate},
              {"auth", config.auth_file.empty() ? "off" : "on"},
              {"tls", config.tls_cert.empty() ? "off" : "on"},
              {"log_level", log::LevelName(config.log_level)}});
}

// What opening the store found and repaired, with the time it took. Each repair (a torn
// tail cut, an index rebuilt) is a warn line of its own, in verify's words.
void LogRecovery(const storage::RecoveryReport& rec, uint64_t millis) {
  log::Write(log::Level::kInfo, "recovery: the store is open",
             {{"segments", rec.segments},
              {"events", rec.end_position.value},
              {"tail_bytes_scanned", rec.tail_bytes_scanned},
              {"index_files_rebuilt", rec.index_files_rebuilt},
              {"torn_bytes_cut", rec.torn_bytes_discarded},
              {"millis", millis}});
  for (const std::string& note : rec.notes) log::Warn("recovery: {}", note);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  KJ_REQUIRE(f.good(), "cannot read", path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string RenderMetrics(ServerContext& ctx) {
  const auto st = ctx.store.stats();
  MetricsText m;
  m.Gauge("esd_build_info", "Always 1; the labels say which esd this is (esd --version).",
          {{"version", std::string(version::Version())}, {"commit", std::string(version::Commit())}}, 1);
  m.Counter("esd_appends_total",
            "EventStore.append calls answered, by outcome: ok (idempotent retries too), wrong_expected_version, or "
            "the rejection code (invalid_argument, idempotency_conflict, out_of_space, overloaded, "
            "permission_denied, unavailable).",
            ctx.ops.appends.Samples());
  m.Counter("esd_log_appends_total", "Batches written to the log, by appends and order commands (idempotent "
            "retries not counted).", st.appends);
  m.Counter("esd_order_commands_total",
            "Order commands answered, by outcome (ok, rejected, conflict, failed) and, when rejected, rule.",
            ctx.ops.order_commands.Samples());
  m.Histogram("esd_rpc_duration_seconds", "Time from an RPC call's arrival to its answer, by service and method.",
              ctx.ops.rpc_latency.Series(), 1e-6);
  m.Counter("esd_events_written_total", "Events written.", st.events_written);
  m.Counter("esd_bytes_written_total", "Bytes written to segment files.", st.bytes_written);
  m.Counter("esd_group_commits_total", "Group commits.", st.groups);
  m.Counter("esd_fsyncs_total", "fdatasync calls.", st.fsyncs);
  m.Histogram("esd_fsync_seconds", "Latency of the fdatasync of a group commit.", st.fsync_micros, 1e-6);
  m.Histogram("esd_group_appends", "Appends per group commit.", st.group_appends);
  m.Counter("esd_segments_sealed_total", "Segments sealed since start.", st.segments_sealed);
  m.Gauge("esd_log_bytes", "Bytes of log in the segment files (what a backup copies; no preallocated zeros).",
          st.log_bytes);
  m.Gauge("esd_allocated_bytes", "Disk blocks the segment and spare files hold: the log plus the zeros kept "
          "ahead of the writer.", st.allocated_bytes);
  m.Counter("esd_fill_waits_total", "Appends that waited for the zero-filling ahead of the writer to catch up.",
            st.fill_waits);
  m.Counter("esd_corruption_found_total",
            "Damaged batches found since start (each once), by reads, subscriptions, projections and backups; "
            "each was refused to its caller.",
            st.corruption_found);
  m.Gauge("esd_durable_position", "Events durable in the store (one past the last position).",
          static_cast<double>(ctx.store.DurablePosition().value));
  m.Gauge("esd_connections", "Open connections (RPC and framed).", ctx.counters.connections.load());
  m.Counter("esd_connections_total", "Connections accepted (RPC and framed).", ctx.counters.connections_total.load());
  m.Counter("esd_connections_refused_total",
            "Connections refused because --max-connections were open (each was told why and closed).",
            ctx.counters.connections_refused.load());
  m.Counter("esd_login_timeouts_total",
            "Connections closed under --auth because their client had not logged in within --login-timeout.",
            ctx.counters.login_timeouts.load());
  m.Counter("esd_accept_errors_total", "Accepts that failed (out of descriptors, aborted connections ...), each retried.",
            ctx.counters.accept_errors.load());
  m.Counter("esd_framed_reads_paused_total",
            "Times a framed connection was not read because 1024 of its requests were in flight (read, answer not "
            "yet written to its socket): its client sends faster than they are served or than it takes the "
            "answers. Reading goes on once answers leave.",
            ctx.counters.framed_reads_paused.load());
  m.Counter("esd_tls_handshake_failures_total",
            "TLS handshakes that failed: plain clients, clients that refuse the certificate, garbage, no handshake "
            "within 10 s (stderr names them, at most one line per 10 s).",
            ctx.counters.tls_handshake_failures.load());
  m.Gauge("esd_subscriptions", "Live subscriptions (not cancelled, ended or dropped).",
          ctx.counters.subscriptions.load());
  m.Gauge("esd_subscription_lag_events",
          "Most events any live subscription has yet to be sent ($all: durable events past its cursor; a stream: "
          "that stream's).", static_cast<double>(ctx.ops.subscriptions.MaxLag(ctx.store)));
  m.Counter("esd_subscribers_failed_total", "Subscriptions ended because the subscriber failed a push.",
            ctx.counters.subscribers_failed.load());
  m.Counter("esd_snapshot_load_failures_total", "Snapshots found but not used (stderr says why); orders' at each load.",
            ctx.projection.snapshot_load_failures() + ctx.orders.snapshot_load_failures());
  const auto cache = ctx.orders.cache_counts();
  m.Counter("esd_order_cache_hits_total", "Order commands that found their order in memory (at its version or before).",
            cache.hits);
  m.Counter("esd_order_cache_misses_total", "Order commands that read their order from its snapshot and stream.",
            cache.misses);
  m.Counter("esd_order_cache_evictions_total", "Orders dropped from memory, the least recently used first.",
            cache.evictions);
  m.Gauge("esd_order_cache_orders", "Orders kept in memory for the next command (at most 10,000).",
          static_cast<double>(ctx.orders.cached_orders()));
  const uint64_t durable = ctx.store.DurablePosition().value, checkpoint = ctx.projection.checkpoint();
  m.Gauge("esd_projection_checkpoint", "Next $all position the order projection applies.", static_cast<double>(checkpoint));
  m.Gauge("esd_projection_lag_events", "Durable events the order projection has not applied yet.",
          static_cast<double>(durable > checkpoint ? durable - checkpoint : 0));
  m.Counter("esd_projection_events_skipped_total",
            "Events in order streams that are not order events (appended before those streams were reserved), "
            "skipped by the order projection since start; the log names the first.",
            static_cast<double>(ctx.projection.skipped_events()));
  for (auto [job, run] : {std::pair{"verify", &ctx.ops.verify}, std::pair{"backup", &ctx.ops.backup}}) {
    m.Gauge(std::string("esd_last_") + job + "_timestamp_seconds",
            std::string("When the last ") + job + " through this daemon ended (Unix time; 0: none since start).",
            run->timestamp_seconds());
    m.Gauge(std::string("esd_last_") + job + "_success",
            std::string("1 if the last ") + job + " through this daemon succeeded" +
                (std::string(job) == "verify" ? " and found no damage" : "") + "; 0 if it failed or none ran.",
            run->success() ? 1 : 0);
  }
  m.Counter("esd_lifecycle_calls_total",
            "EventStore.deleteStream, truncateStream and setStreamMetadata calls answered, by call and outcome (as "
            "esd_appends_total's, and not_found, stream_deleted).",
            ctx.ops.lifecycle_calls.Samples());
  m.Counter("esd_streams_deleted_total", "Stream deletes acknowledged since start, by kind (soft, hard).",
            ctx.ops.streams_deleted.Samples());
  const auto scavenge = ctx.scavenge_watch.TotalsWith(ctx.store.GetScavengeStatus());
  m.Gauge("esd_scavenge_running", "1 while a scavenge runs (esctl scavenge status), else 0.", scavenge.running ? 1 : 0);
  m.Counter("esd_scavenge_runs_total", "Scavenges started since start.", scavenge.runs);
  m.Counter("esd_scavenge_bytes_read_total", "Bytes of sealed segments scavenges read, over every run since start.",
            scavenge.bytes_read);
  m.Counter("esd_scavenge_bytes_reclaimed_total",
            "Disk bytes scavenges freed by rewriting segments without removed events, over every run since start.",
            scavenge.bytes_reclaimed);
  m.Counter("esd_scavenge_events_removed_total",
            "Removed events whose bytes scavenges dropped, over every run since start.", scavenge.events_removed);
  m.Counter("esd_scavenge_segments_rewritten_total", "Segments scavenges rewrote, over every run since start.",
            scavenge.segments_rewritten);
  if (auto free = FreeBytes(ctx.config.data_dir)) {
    m.Gauge("esd_data_dir_free_bytes", "Bytes free for esd on the filesystem of the data directory.",
            static_cast<double>(*free));
  }
  AddProcessMetrics(m);
  return m.Take();
}

}  // namespace

int RunDaemon(const Config& config) {
  const auto started = std::chrono::steady_clock::now();
  KjLogToOurs kj_log;
  LogStart(config);
  // Before the store opens: it keeps one descriptor per segment, and each client takes one.
  const storage::OpenFileLimit files = storage::RaiseOpenFileLimit();
  if (files.now != files.before) {
    log::Info("raised the open-file limit (RLIMIT_NOFILE) from {} to {}: the store keeps one open file per segment "
              "and each connection takes one",
              files.before, files.now);
  }
  StoreEventsToLog store_events(config.data_dir);  // outlives the store
  storage::Options options;
  options.listener = &store_events;
  options.segment_size = config.segment_size;
  options.durability = config.fsync;
  options.scavenge_read_bytes_per_second = config.scavenge_max_read_rate;
  options.max_event_size = static_cast<uint32_t>(std::min<uint64_t>(config.max_event_size, UINT32_MAX));
  auto opened = storage::Store::Open(config.data_dir, options);
  if (!opened.ok()) {
    log::Error("cannot open the store in {}: {}", config.data_dir, opened.status().ToString());
    return kExitFailure;
  }
  std::unique_ptr<storage::Store> store = std::move(opened).value();
  const auto& rec = store->recovery();
  LogRecovery(rec, MillisSince(started));

  auto io = kj::setupAsyncIo();
  // Let the event loop look at the sockets every few events, even while subscriptions have
  // work queued: otherwise a cancel or a disconnect waits behind thousands of pushes.
  io.waitScope.setBusyPollInterval(16);
  int exit_code = kExitOk;
  std::chrono::steady_clock::time_point stop_began;
  {
    // The writer thread's news (append results, durable moves) reach this loop through it.
    AppendCompletions append_completions;
    DurableNotifier notifier(*store, append_completions);
    DamageLog damage_log;
    domain::OrderCommands::Options order_options;
    order_options.snapshot_every = config.snapshot_every;
    // Orders' snapshots are written on a thread of their own, not on the event loop. The
    // queue is declared after `orders`, so it finishes its writes before `orders` goes.
    storage::TaskQueue* order_snapshot_writer = nullptr;
    order_options.write_snapshot = [&order_snapshot_writer](std::function<void()> write) {
      order_snapshot_writer->Post(std::move(write));
    };
    domain::OrderCommands orders(*store, order_options);
    storage::TaskQueue order_snapshots("esd-ord-snap");
    order_snapshot_writer = &order_snapshots;
    // The projection snapshots after 10,000 events and 60 s, and at a graceful stop.
    ProjectionRunner projection(*store, notifier, io.provider->getTimer(), damage_log,
                                domain::ProjectionSnapshotPath(config.data_dir),
                                10'000);
    if (!projection.snapshot_ignored().empty()) {
      log::Warn("the order projection's snapshot is not used ({}); it catches up from position 0",
                projection.snapshot_ignored());
    } else if (std::error_code ec; std::filesystem::exists(domain::ProjectionSnapshotPath(config.data_dir), ec)) {
      log::Info("the order projection's snapshot is loaded: it catches up from position {} of {}",
                projection.checkpoint(), store->DurablePosition().value);
    } else {
      log::Info("the order projection has no snapshot: it catches up from position 0 of {}",
                store->DurablePosition().value);
    }
    projection.Start();
    ServerContext ctx{.store = *store,
                      .notifier = notifier,
                      .append_completions = append_completions,
                      .config = config,
                      .orders = orders,
                      .projection = projection,
                      .timer = io.provider->getTimer(),
                      .damage_log = damage_log};
    // The store's directory of stream names is built by its first user, which sorts every
    // name of the newest index file (~0.6 s for a million streams): do that here, off the
    // event loop, rather than in the first listStreams or status call.
    ctx.jobs.Start([&s = *store] { (void)s.StreamCount(); });

    // Shutdown: a signal on the HTTP thread fulfils a promise on this one.
    auto stop = kj::newPromiseAndCrossThreadFulfiller<int>();
    std::atomic<bool> stopping{false};
    auto stop_fulfiller = kj::mv(stop.fulfiller);
    HttpServer::Options http_options;
    http_options.address = config.http == "off" ? "" : config.http;
    http_options.routes["/metrics"] = [&ctx] {
      return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", RenderMetrics(ctx)};
    };
    // /health and /ready (server/health.h): the loop beats every second while it turns.
    LoopHeartbeat heartbeat;
    std::function<kj::Promise<void>()> beat = [&]() -> kj::Promise<void> {
      heartbeat.Beat();
      ctx.scavenge_watch.Poll(ctx.store.GetScavengeStatus());  // logs a scavenge's end
      return io.provider->getTimer().afterDelay(kHeartbeatEvery.count() * kj::SECONDS).then([&] { return beat(); });
    };
    kj::Promise<void> beating = beat().eagerlyEvaluate(nullptr);
    auto facts = [&] {
      HealthFacts f = GatherHealthFacts(*store, heartbeat, projection.checkpoint(), stopping.load());
      f.projection_damage = projection.damage_text();
      return f;
    };
    http_options.routes["/health"] = [facts] { return HealthResponse(facts()); };
    http_options.routes["/ready"] = [facts] { return ReadyResponse(facts()); };
    // Counted with the RPC listener's; logged at most once per 10 s (this runs on the HTTP thread).
    BurstLog http_accept_log;  // used on the HTTP thread
    http_options.on_accept_error = [&](const std::string& what) {
      ++ctx.counters.accept_errors;
      if (const uint64_t n = http_accept_log.Failed()) {
        log::Warn("accepting an HTTP connection failed: {}; retrying every 100 ms ({} failures since the last such "
                  "line; esd_accept_errors_total counts them all)",
                  what, n);
      }
    };
    http_options.on_signal = [&](int signo) {
      if (!stopping.exchange(true)) stop_fulfiller->fulfill(kj::mv(signo));
    };
    std::string error;
    auto http = HttpServer::Start(std::move(http_options), &error);
    if (!http) {
      log::Error("cannot serve HTTP on {}: {}", config.http, error);
      return kExitFailure;
    }

    kj::Own<kj::ConnectionReceiver> listener;  // plain TCP (or unix); TLS is per connection
    kj::Own<TlsAcceptor> tls;
    std::string rpc_address = config.listen;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
      if (config.listen.rfind("unix:", 0) == 0) {
        const std::string path = config.listen.substr(5);
        struct stat st;
        if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());  // stale socket
      }
      auto address = io.provider->getNetwork().parseAddress(config.listen).wait(io.waitScope);
      listener = address->listen();
      if (config.listen.rfind("unix:", 0) != 0) {
        rpc_address = config.listen.substr(0, config.listen.rfind(':')) + ":" + std::to_string(listener->getPort());
      }
      if (!config.tls_cert.empty()) {
        tls = kj::heap<TlsAcceptor>(ReadFile(config.tls_cert), ReadFile(config.tls_key), io.provider->getTimer(),
                                    ctx.counters.tls_handshake_failures);
      }
    })) {
      log::Error("cannot listen on {}: {}", config.listen, e->getDescription().cStr());
      return kExitFailure;
    }

    ErrorHandler errors;
    kj::TaskSet connections(errors);
    // Serves one connection (its TLS handshake done) until the peer goes. It counts as open
    // from here, before it has sent anything. Its first four bytes say which protocol it
    // speaks: the framed one's magic (protocol/frames.capnp), else Cap'n Proto RPC, which is
    // given them back. Each connection comes and goes with a debug line, which tests wait on.
    //
    // Under --auth, a connection whose client has not logged in within --login-timeout of
    // being admitted (its first bytes included) is closed and counted: without it, clients
    // with no token (a scanner, a flood) could hold every slot --max-connections allows. A
    // client that vanished is the keepalive's (--tcp-keepalive), with or without --auth.
    auto& login_timer = io.provider->getTimer();
    BurstLog login_timeout_log;
    auto serve = [&](kj::Own<kj::AsyncIoStream> stream) -> kj::Promise<void> {
      log::Debug("a connection opened: {} are open", ++ctx.counters.connections);
      ++ctx.counters.connections_total;
      struct Served {
        kj::Maybe<kj::Own<ConnectionState>> state;  // once its protocol is known
      };
      auto served = kj::heap<Served>();
      Served& s = *served;
      auto first = kj::heapArray<kj::byte>(transport::kProtocolSniffBytes);
      auto read = stream->tryRead(first.begin(), first.size(), first.size());
      kj::Promise<void> serving =
          read.then([&ctx, &s, stream = kj::mv(stream), first = kj::mv(first)](size_t n) mutable -> kj::Promise<void> {
            if (transport::IsFramesMagic(first.begin(), n)) {
              auto conn = kj::heap<FramedConnection>(kj::mv(stream), ctx);
              s.state = kj::addRef(conn->state());
              return conn->Run().attach(kj::mv(conn));
            }
            if (n < first.size()) return kj::READY_NOW;  // gone before its first message: nothing to serve
            auto conn = kj::heap<Connection>(kj::heap<transport::PrefixedStream>(kj::mv(stream), kj::mv(first)), ctx);
            s.state = kj::addRef(conn->state());
            return conn->OnDisconnect().attach(kj::mv(conn));
          });
      if (!config.auth_file.empty()) {
        auto expired = [&ctx, &config, &login_timeout_log, &s]() -> kj::Promise<void> {
          KJ_IF_MAYBE(state, s.state) {
            if ((*state)->logged_in()) return kj::NEVER_DONE;
          }
          ++ctx.counters.login_timeouts;
          if (const uint64_t n = login_timeout_log.Failed()) {
            log::Warn("closed a connection whose client did not log in within {} s (esd --login-timeout; {} such "
                      "connections since the last such line; esd_login_timeouts_total counts them all)",
                      config.login_timeout, n);
          }
          return kj::READY_NOW;  // the connection is dropped, its socket closed
        };
        auto deadline = login_timer.afterDelay(config.login_timeout * kj::SECONDS).then(kj::mv(expired));
        serving = serving.exclusiveJoin(kj::mv(deadline));
      }
      return serving.attach(kj::mv(served))
          .then([&ctx] { log::Debug("a connection closed: {} are open", --ctx.counters.connections); },
                [&ctx](kj::Exception&& e) {
                  log::Debug("a connection closed: {} are open", --ctx.counters.connections);
                  kj::throwFatalException(kj::mv(e));
                });
    };
    // Past --max-connections a connection (its TLS handshake done) is told why and closed:
    // each one holds a descriptor, and the store needs its own (one per segment).
    // The flag, or fewer when the open-file limit leaves less room beside the store's files.
    uint64_t max_connections = config.max_connections;
    std::string bound = "--max-connections";  // what sets the bound, for the refused client
    std::string allows = "--max-connections " + std::to_string(max_connections);  // and for the log
    if (const auto open = storage::OpenFileCount(); files.now > 0 && open) {
      max_connections = ConnectionsThatFit(config.max_connections, files.now, *open);
      if (max_connections < config.max_connections) {
        bound = "--max-connections " + std::to_string(config.max_connections) + ", lowered to fit its open-file limit";
        allows = "the open-file limit (" + bound + ")";
        log::Warn("--max-connections {} does not fit the open-file limit of {} ({} files are open, {} are kept for "
                  "new segments and files): serving at most {} connections; raise the limit (ulimit -n, or "
                  "LimitNOFILE= in esd's systemd unit) to serve more",
                  config.max_connections, files.now, *open, kSpareFiles, max_connections);
      }
    }
    BurstLog refusal_log;
    auto admit = [&](kj::Own<kj::AsyncIoStream> stream) -> kj::Promise<void> {
      const uint32_t open = ctx.counters.connections.load();
      if (open < max_connections) return serve(kj::mv(stream));
      ++ctx.counters.connections_refused;
      if (const uint64_t n = refusal_log.Failed()) {
        log::Warn("refused a connection: {} are open, the most {} allows ({} refused since the last such line; "
                  "esd_connections_refused_total counts them all)",
                  open, allows, n);
      }
      // "too many connections" first: the client library tells this refusal by it. Said in
      // the connection's protocol, which its first four bytes tell (RPC when none come
      // within kRefusalDrain).
      struct Refused {
        kj::Own<kj::AsyncIoStream> stream;
        kj::Array<kj::byte> first = kj::heapArray<kj::byte>(transport::kProtocolSniffBytes);
        kj::String reason;
      };
      auto r = kj::heap<Refused>();
      r->stream = kj::mv(stream);
      r->reason = kj::str("too many connections: esd serves at most ", max_connections, " connections at once (", bound,
                          "), and ", open, " are open: retry later");
      auto& timer = io.provider->getTimer();
      auto read = r->stream->tryRead(r->first.begin(), r->first.size(), r->first.size());
      return timer.timeoutAfter(kRefusalDrain, kj::mv(read))
          .then([](size_t n) { return n; }, [](kj::Exception&&) { return size_t{0}; })
          .then([&timer, r = kj::mv(r)](size_t n) mutable {
            const bool framed = transport::IsFramesMagic(r->first.begin(), n);
            auto& refused = *r;
            return RefuseConnection(kj::mv(refused.stream), refused.reason, timer, framed).attach(kj::mv(r));
          });
    };
    // An accept that fails (out of descriptors: EMFILE, ENFILE; ENOBUFS; a connection reset
    // before it was taken) must not end the loop: it is counted, retried after a short
    // pause, so that the daemon serves again as soon as descriptors are back, and logged at
    // most once per burst (10 s), with the count since the last line. A TLS handshake is no
    // part of accepting: it runs in the connection's own task (TlsAcceptor), so a slow or
    // failing client delays nobody and is never an accept error.
    auto& accept_timer = io.provider->getTimer();
    BurstLog accept_log;
    std::function<kj::Promise<void>()> accept_loop = [&]() -> kj::Promise<void> {
      // evalNow: accept() may throw at once (EMFILE) rather than reject its promise.
      return kj::evalNow([&] { return listener->accept(); }).then(
          [&](kj::Own<kj::AsyncIoStream> accepted) {
            // Keepalive first: a client that vanishes, even during its TLS handshake or
            // before its first byte, is found out (a unix socket has no use for it).
            if (config.tcp_keepalive > 0) transport::SetKeepAlive(*accepted, static_cast<int>(config.tcp_keepalive));
            // A TCP connection is read once per arrival of bytes (protocol/socket_stream.h).
            auto stream = transport::AdoptTcpSocket(kj::mv(accepted), io.unixEventPort);
            if (!tls) {
              connections.add(admit(kj::mv(stream)));
            } else {
              connections.add(tls->Handshake(kj::mv(stream)).then(
                  [&](kj::Maybe<kj::Own<kj::AsyncIoStream>> secured) -> kj::Promise<void> {
                    // No handshake, or one that ended after the stop began: not served.
                    KJ_IF_MAYBE(s, secured) {
                      if (!ctx.stopping) return admit(kj::mv(*s));
                    }
                    return kj::READY_NOW;
                  }));
            }
            return accept_loop();
          },
          [&](kj::Exception&& e) -> kj::Promise<void> {
            ++ctx.counters.accept_errors;
            if (const uint64_t n = accept_log.Failed()) {
              log::Warn("accepting a connection failed: {}; retrying every 50 ms ({} failures since the last such "
                        "line; esd_accept_errors_total counts them all)",
                        e.getDescription().cStr(), n);
            }
            return accept_timer.afterDelay(50 * kj::MILLISECONDS).then([&] { return accept_loop(); });
          });
    };
    kj::Promise<void> accepting = accept_loop().eagerlyEvaluate([](kj::Exception&& e) {
      log::Error("accepting connections failed, and esd accepts no more: {}", e.getDescription().cStr());
    });

    // The ready line on stdout is for scripts and tests (tests/server/esd_process.h reads
    // it): its words stay as they are. bytes= is the log written, allocated= its disk blocks.
    // The log says the same as fields.
    const std::string http_address =
        config.http == "off" ? "off" : config.http.substr(0, config.http.rfind(':')) + ":" + std::to_string(http->port());
    const storage::StoreStats disk = store->stats();
    std::printf("esd ready: rpc=%s%s http=%s data=%s events=%llu segments=%llu bytes=%llu allocated=%llu fsync=%s\n",
                tls ? "tls:" : "", rpc_address.c_str(), http_address.c_str(), config.data_dir.c_str(),
                static_cast<unsigned long long>(store->DurablePosition().value),
                static_cast<unsigned long long>(rec.segments), static_cast<unsigned long long>(disk.log_bytes),
                static_cast<unsigned long long>(disk.allocated_bytes), config.fsync.ToString().c_str());
    std::fflush(stdout);
    log::Write(log::Level::kInfo, "ready",
               {{"rpc", (tls ? "tls:" : "") + rpc_address},
                {"http", http_address},
                {"data", config.data_dir},
                {"events", store->DurablePosition().value},
                {"segments", rec.segments},
                {"bytes", disk.log_bytes},
                {"allocated", disk.allocated_bytes},
                {"fsync", config.fsync.ToString()},
                {"startup_millis", MillisSince(started)}});
    if (std::string why; !NotifyServiceManager("READY=1", &why)) {
      log::Warn("could not tell systemd that esd is ready: {}", why);
    }

    const int signo = stop.promise.wait(io.waitScope);
    stop_began = std::chrono::steady_clock::now();
    const char* signal_name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    log::Write(log::Level::kInfo,
               std::string(signal_name) + ": stopping: no new connections; answering calls in flight",
               {{"signal", signal_name},
                {"connections", ctx.connections.size()},
                {"subscriptions", ctx.subscriptions.size()},
                {"appends_in_flight", ctx.appends_in_flight}});
    if (std::string why; !NotifyServiceManager("STOPPING=1", &why)) {
      log::Warn("could not tell systemd that esd is stopping: {}", why);
    }
    accepting = kj::READY_NOW;  // cancels the accept loop
    listener = nullptr;
    ctx.stopping = true;  // new appends and subscriptions are refused from here
    // Subscribers learn why their subscription ends (Subscriber.dropped) before the
    // connections close.
    auto& timer = io.provider->getTimer();
    if (!ctx.subscriptions.empty()) {
      const auto began = std::chrono::steady_clock::now();
      const size_t subscriptions = ctx.subscriptions.size();
      kj::Vector<kj::Promise<void>> told;
      for (LiveSubscription* sub : std::vector<LiveSubscription*>(ctx.subscriptions.begin(), ctx.subscriptions.end())) {
        told.add(sub->End("the server is shutting down"));
      }
      const bool all = kj::joinPromises(told.releaseAsArray())
                           .then([] { return true; })
                           .exclusiveJoin(timer.afterDelay(2 * kj::SECONDS).then([] { return false; }))
                           .wait(io.waitScope);
      log::Info("stop: told {} subscriber(s) that the server is shutting down{} ({} ms)", subscriptions,
                all ? "" : "; some did not take it within 2 s", MillisSince(began));
    }
    // The appends in flight finish (the writer keeps going) and are answered, then each
    // connection's answers leave its socket before it closes; at most kDrainTimeout in all,
    // for a client that does not take its answers.
    const auto deadline = timer.now() + kDrainTimeout;
    if (const uint64_t in_flight = ctx.appends_in_flight; in_flight > 0) {
      const auto began = std::chrono::steady_clock::now();
      const bool answered = WhenAppendsAnswered(ctx)
                                .then([] { return true; })
                                .exclusiveJoin(timer.atTime(deadline).then([] { return false; }))
                                .wait(io.waitScope);
      log::Info("stop: {} {} append(s) in flight ({} ms)", answered ? "answered" : "gave up waiting for", in_flight,
                MillisSince(began));
    }
    {
      kj::Vector<kj::Promise<void>> flushed;
      size_t behind = 0;
      for (ConnectionState* c : ctx.connections) {
        behind += c->outgoing_bytes() > 0;
        flushed.add(c->WhenFlushed());
      }
      const auto began = std::chrono::steady_clock::now();
      if (behind > 0) {
        log::Info("waiting for {} connection(s) to take their answers (at most {} s)", behind,
                  static_cast<long long>((deadline - timer.now()) / kj::SECONDS));
      }
      const bool flushed_all = kj::joinPromises(flushed.releaseAsArray())
                                   .then([] { return true; })
                                   .exclusiveJoin(timer.atTime(deadline).then([] { return false; }))
                                   .wait(io.waitScope);
      if (behind > 0) {
        log::Info("stop: {} connection(s) behind {} ({} ms)", behind,
                  flushed_all ? "took their answers" : "did not take all their answers in time; closing them",
                  MillisSince(began));
      }
    }
    {
      const auto began = std::chrono::steady_clock::now();
      ctx.jobs.JoinAll();  // a backup or verify in progress finishes first
      if (const uint64_t ms = MillisSince(began); ms > 0) log::Info("stop: waited {} ms for jobs (backup, verify)", ms);
    }
    if (auto saved = projection.SaveSnapshot(); !saved.ok()) {
      log::Error("could not save the order projection's snapshot ({}); the next start catches up", saved.ToString());
    } else {
      log::Info("stop: saved the order projection's snapshot at position {}", projection.checkpoint());
    }
    http->Stop();  // last thing that needs ctx; from here a second signal kills (nothing is lost)
  }
  if (config.listen.rfind("unix:", 0) == 0) ::unlink(config.listen.substr(5).c_str());
  store.reset();  // finishes what is queued and syncs
  log::Write(log::Level::kInfo, "stopped", {{"stop_millis", MillisSince(stop_began)}});
  return exit_code;
}

}  // namespace esd::server
