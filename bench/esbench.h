// esbench: the load generator of esd. Shared declarations of esbench.cc (command line,
// progress, report) and esbench_workloads.cc (the worker threads).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <map>
#include <mutex>
#include <string>

#include "bench/esbench_cpu.h"
#include "bench/esbench_histogram.h"

namespace esbench {

using Clock = std::chrono::steady_clock;

enum class Workload { kAppend, kReadAll, kSubscribe, kOrders };

// orders: --threads defaults to --clients, at most this many (each thread drives
// ceil(clients / threads) clients, each with one command in flight).
constexpr int kOrdersMaxDefaultThreads = 64;

struct Options {
  std::string connect = "127.0.0.1:7400";
  std::string token;
  Workload workload = Workload::kAppend;
  int clients = 1;
  int threads = 1;                // orders: default min(clients, kOrdersMaxDefaultThreads)
  int inflight = 1;
  uint32_t batch = 0;             // 0: the workload's default (append 1, read-all 1000)
  uint64_t event_size = 200;
  double duration = 0;            // 0: the workload's default (10 s; subscribe: a 600 s cap)
  uint64_t calls = 0;             // --calls: stop once this many calls completed (0: no such stop)
  int streams_per_client = 0;     // 0: one stream per in-flight slot
  uint64_t prefill = 0;
  bool json = false;
  CpuSource daemon_cpu;           // --daemon-pid / --metrics: report the daemon's CPU per event
  bool framed = false;            // --protocol frames: appends through esd::client::Appender
};

// What one worker thread measured. The atomics are read by the progress line while the
// thread runs; the rest is read only after it has been joined.
struct ThreadStats {
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> calls{0};  // orders: commands answered (any outcome)
  std::atomic<uint64_t> bytes{0};  // event data bytes
  std::atomic<uint64_t> error_count{0};
  std::atomic<uint64_t> orders{0};  // orders: placed (all five commands ok)
  Histogram latency;               // per call (orders: per command), ns
  Histogram order_latency;         // orders: CreateOrder sent .. PlaceOrder answered, placed orders only, ns
  std::map<std::string, uint64_t> errors;  // by kind
  std::map<std::string, std::string> error_examples;  // kind -> the first message seen
  Clock::time_point last_done{};   // when its last call completed (or its last catch-up)
  int clients_caught_up = 0;       // subscribe

  void Error(const std::string& kind, const std::string& example = {}) {
    if (errors[kind]++ == 0 && !example.empty()) error_examples[kind] = example;
    error_count.fetch_add(1, std::memory_order_relaxed);
  }
};

// State shared by the main thread and the workers of one run.
struct Run {
  explicit Run(int threads) : connected(threads) {}
  const Options* options = nullptr;
  std::string run_id;                   // makes this run's stream names unique
  std::latch connected;                 // each worker counts down once its clients are up
  std::latch go{1};                     // the main thread opens it when the clock starts
  std::atomic<bool> stop{false};        // no new calls after this
  std::atomic<bool> connect_failed{false};
  std::atomic<int> finished{0};         // workers done (subscribe: caught up or failed)
  Clock::time_point start{};
  std::mutex mu;                        // guards connect_error
  std::string connect_error;
};

// Worker thread body: connects its clients (clients first..first+count-1), counts down
// `connected`, waits for `go`, runs the workload until `stop` (subscribe: until caught up),
// drains what is in flight and returns.
void RunWorker(Run& run, int first_client, int client_count, ThreadStats& stats);

// Appends `events` events (batches of 1000, up to 16 in flight) to streams of its own,
// printing a progress line on stderr. False (with `error` set) if anything failed.
bool Prefill(const Options& options, const std::string& run_id, uint64_t events, bool tty, std::string* error);

}  // namespace esbench
