// esbench: the load generator of esd. Drives a running daemon through esd::client with one
// connection per client, spread over a few threads, and reports events/s, MB/s, calls/s
// (orders: orders/s and commands/s), latency percentiles per call and errors by kind. See
// kUsage below.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/esbench.h"

namespace esbench {
namespace {

const char kUsage[] =
    R"(usage: esbench [options]

Load generator for esd. Each client has its own connection; the clients are spread over
--threads threads, whose clients share that thread's event loop.

  --connect ADDR          daemon address, HOST:PORT or unix:PATH (default 127.0.0.1:7400)
  --token T               login token (default empty)
  --workload W            append | read-all | subscribe | orders (default append)
  --clients N             connections (default 1)
  --threads T             client threads (default 1, orders: --clients up to 64; at most
                          --clients)
  --inflight K            appends each client keeps in flight (default 1); orders: orders
                          each client keeps in progress on its one connection
  --protocol P            append, orders: rpc (Cap'n Proto RPC, esd::client::Client; the
                          default) or frames (the framed protocol, esd::client::Appender)
  --batch B               append: events per append (default 1);
                          read-all: events per ReadAll page (default 1000)
  --event-size BYTES      data bytes per appended event (default 200)
  --streams-per-client M  append: each client round-robins over M streams (default: one
                          stream per in-flight slot, so appends never contend)
  --duration S            seconds to run (default 10); subscribe: the most to wait for the
                          catch-up (default 600)
  --calls N               append, orders, read-all: stop once N calls (commands, pages) have
                          completed, or at --duration if that comes first (no time limit
                          without --duration); a few more may complete, as the count is
                          checked every 50 ms. For tail checks such as "no append over
                          50 ms in 5 M": --calls 5000000, then see max
  --prefill N             append N events (batches of 1000, 16 in flight) before measuring
  --daemon-pid PID        report the daemon's CPU time per event (per order): utime + stime
                          of /proc/PID/stat (all its threads) before and after the run; the
                          daemon must run on this machine
  --metrics HOST:PORT     the same from esd's HTTP address (esd --http): its
                          process_cpu_seconds_total from GET /metrics before and after
                          the run (not with --daemon-pid)
  --json                  print the result as one JSON object on stdout
  --help                  print this and exit

Workloads:
  append     every client keeps K appends of B events (type "BenchEvent", random ids,
             expected version any) in flight; when one completes the next is issued.
  read-all   every client pages through $all from position 0 with ReadAll(count = B),
             wrapping to 0 at the end of the log. ReadAll is synchronous, so a thread has
             one page in flight at a time: use --threads for concurrency.
  subscribe  every client subscribes to $all from position 0 and counts events until it
             is caught up, then stops; the rate is over the time to catch up. It checks
             that positions arrive in order (holes where events were removed). "calls"
             are the batches pushed.
  orders     every client places orders through the Order service, one after the other:
             CreateOrder (id unique per run, client, lane and iteration; customer
             "cust-<(client * K + lane) % 100>", K = --inflight, lane 0..K-1), three
             AddItem (different SKUs, quantity 1..3, unit
             price 100..999 cents) and PlaceOrder, each command with a fresh command id.
             Reports orders/s (orders placed) and commands/s; latency is per command, and
             per placed order from CreateOrder to PlaceOrder. Any outcome but ok is an
             error by kind (rejected:<rule>, conflict, failed:<code>) and abandons that
             order. Each order has one command in flight and sends its next when the
             answer arrives; the clients of a thread share its event loop, so
             --clients 64 --threads 2 has 64 commands in flight. --inflight K gives each
             client K orders in progress at once over its connection (as an application
             server multiplexes its users' commands over a few connections): --clients 2
             --inflight 32 has 64 commands in flight on 2 connections. A broken
             connection ends all of its client's orders. --threads defaults to --clients
             (at most 64) here.

Latency is per call (append or ReadAll) from a log-bucketed histogram (< 0.8% buckets).
MB/s counts event data bytes (1 MB = 10^6 bytes). The daemon's CPU is sampled when the
clock starts (after --prefill) and after the last call has completed, and divided by the
events (orders) completed in that window. A rejected append or a wrong expected version is
an error. Exit status: 0 success, 1 an error occurred, the connection failed or the
daemon's CPU could not be read, 2 bad usage. --batch, --event-size and
--streams-per-client do not apply to orders.
)";

bool ParseUint(const std::string& s, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

// Returns nullopt and sets `error` on bad usage; sets `help` for --help.
std::optional<Options> ParseArgs(int argc, char** argv, bool* help, std::string* error) {
  Options o;
  bool batch_set = false, duration_set = false, threads_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return o;
    }
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      *error = "unexpected argument '" + arg + "'";
      return std::nullopt;
    }
    static const char* const kKnown[] = {"--connect", "--token",      "--workload",           "--clients",
                                         "--threads", "--inflight",   "--batch",              "--event-size",
                                         "--prefill", "--duration",   "--streams-per-client",
                                         "--daemon-pid", "--metrics", "--protocol", "--calls"};
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      *error = "unknown option " + name;
      return std::nullopt;
    }
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      *error = arg + " needs a value";
      return std::nullopt;
    }
    uint64_t n = 0;
    auto number = [&](uint64_t min, uint64_t max) {
      if (!ParseUint(value, max, &n) || n < min) {
        *error = arg + ": expected a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                 ", got '" + value + "'";
        return false;
      }
      return true;
    };
    if (arg == "--connect") {
      o.connect = value;
    } else if (arg == "--token") {
      o.token = value;
    } else if (arg == "--workload") {
      if (value == "append") o.workload = Workload::kAppend;
      else if (value == "read-all") o.workload = Workload::kReadAll;
      else if (value == "subscribe") o.workload = Workload::kSubscribe;
      else if (value == "orders") o.workload = Workload::kOrders;
      else {
        *error = "--workload: expected append, read-all, subscribe or orders, got '" + value + "'";
        return std::nullopt;
      }
    } else if (arg == "--protocol") {
      if (value != "rpc" && value != "frames") {
        *error = "--protocol: expected rpc or frames, got '" + value + "'";
        return std::nullopt;
      }
      o.framed = value == "frames";
    } else if (arg == "--clients") {
      if (!number(1, 100000)) return std::nullopt;
      o.clients = static_cast<int>(n);
    } else if (arg == "--threads") {
      if (!number(1, 1024)) return std::nullopt;
      o.threads = static_cast<int>(n);
      threads_set = true;
    } else if (arg == "--inflight") {
      if (!number(1, 100000)) return std::nullopt;
      o.inflight = static_cast<int>(n);
    } else if (arg == "--batch") {
      if (!number(1, 1000000)) return std::nullopt;
      o.batch = static_cast<uint32_t>(n);
      batch_set = true;
    } else if (arg == "--event-size") {
      if (!number(0, 64u << 20)) return std::nullopt;
      o.event_size = n;
    } else if (arg == "--streams-per-client") {
      if (!number(1, 1000000)) return std::nullopt;
      o.streams_per_client = static_cast<int>(n);
    } else if (arg == "--calls") {
      if (!number(1, UINT64_MAX)) return std::nullopt;
      o.calls = n;
    } else if (arg == "--prefill") {
      if (!number(0, UINT64_MAX)) return std::nullopt;
      o.prefill = n;
    } else if (arg == "--daemon-pid") {
      if (!number(1, 4194304)) return std::nullopt;  // pid_max's ceiling on Linux
      o.daemon_cpu.pid = static_cast<pid_t>(n);
    } else if (arg == "--metrics") {
      if (value.empty()) {
        *error = "--metrics: expected esd's HTTP address HOST:PORT, got ''";
        return std::nullopt;
      }
      o.daemon_cpu.metrics = value;
    } else if (arg == "--duration") {
      char* end = nullptr;
      o.duration = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(o.duration > 0) || o.duration > 1e7) {
        *error = "--duration: expected a positive number of seconds, got '" + value + "'";
        return std::nullopt;
      }
      duration_set = true;
    }
  }
  if (o.daemon_cpu.pid != 0 && !o.daemon_cpu.metrics.empty()) {
    *error = "--daemon-pid and --metrics both measure the daemon's CPU: give one of them";
    return std::nullopt;
  }
  if (o.framed && o.workload != Workload::kAppend && o.workload != Workload::kOrders) {
    *error = "--protocol frames: only the append and orders workloads have a framed form (the framed protocol "
             "writes only)";
    return std::nullopt;
  }
  if (!batch_set) o.batch = o.workload == Workload::kReadAll ? 1000 : 1;
  if (o.calls > 0 && o.workload == Workload::kSubscribe) {
    *error = "--calls: a subscription stops when it has caught up; use --prefill to size what it reads";
    return std::nullopt;
  }
  if (!duration_set) o.duration = o.workload == Workload::kSubscribe ? 600 : o.calls > 0 ? 1e7 : 10;
  if (o.workload == Workload::kOrders) {
    if (!threads_set) o.threads = std::min(o.clients, kOrdersMaxDefaultThreads);
  }
  o.threads = std::min(o.threads, o.clients);
  return o;
}

std::string RandomRunId() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", rd());
  return buf;
}

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kAppend: return "append";
    case Workload::kReadAll: return "read-all";
    case Workload::kSubscribe: return "subscribe";
    case Workload::kOrders: return "orders";
  }
  return "?";
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

struct Totals {
  uint64_t events = 0, calls = 0, bytes = 0, errors = 0, orders = 0;
  double seconds = 0;
  Histogram latency;
  Histogram order_latency;
  std::map<std::string, uint64_t> error_kinds;
  std::map<std::string, std::string> examples;
  int caught_up = 0;
  std::optional<double> daemon_cpu_seconds;  // over the measured window, when asked for
  const char* ended_by = "duration";         // what ended the run: duration, calls, finished
};

// Microseconds of `seconds` per unit, as text with one decimal; `none` when there are no units.
std::string PerUnit(double seconds, uint64_t units, const char* none) {
  if (units == 0) return none;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", seconds * 1e6 / static_cast<double>(units));
  return buf;
}

void Report(const Options& o, const Totals& t, const std::string& connect_error) {
  const double secs = t.seconds > 0 ? t.seconds : 1e-9;
  const double eps = static_cast<double>(t.events) / secs;
  const double mbps = static_cast<double>(t.bytes) / 1e6 / secs;
  const double cps = static_cast<double>(t.calls) / secs;
  const bool has_latency = o.workload != Workload::kSubscribe;
  const bool orders = o.workload == Workload::kOrders;
  const double ops = static_cast<double>(t.orders) / secs;
  auto us = [&](double q) { return static_cast<double>(t.latency.ValueAt(q)) / 1e3; };
  auto order_us = [&](double q) { return static_cast<double>(t.order_latency.ValueAt(q)) / 1e3; };
  if (o.json) {
    std::string j = "{";
    j += "\"workload\":" + JsonString(WorkloadName(o.workload));
    j += ",\"protocol\":" + JsonString(o.framed ? "frames" : "rpc");
    j += ",\"connect\":" + JsonString(o.connect);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  ",\"clients\":%d,\"threads\":%d,\"inflight\":%d,\"batch\":%u,\"event_size\":%llu,"
                  "\"prefill\":%llu,\"seconds\":%.3f,\"events\":%llu,\"calls\":%llu,\"bytes\":%llu,"
                  "\"events_per_s\":%.1f,\"mb_per_s\":%.3f,\"calls_per_s\":%.1f",
                  o.clients, o.threads, o.inflight, o.batch, static_cast<unsigned long long>(o.event_size),
                  static_cast<unsigned long long>(o.prefill), t.seconds, static_cast<unsigned long long>(t.events),
                  static_cast<unsigned long long>(t.calls), static_cast<unsigned long long>(t.bytes), eps, mbps, cps);
    j += buf;
    if (has_latency && t.latency.count() > 0) {
      std::snprintf(buf, sizeof buf,
                    ",\"latency_us\":{\"count\":%llu,\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
                    "\"p999\":%.1f,\"max\":%.1f}",
                    static_cast<unsigned long long>(t.latency.count()), static_cast<double>(t.latency.min()) / 1e3,
                    us(0.5), us(0.9), us(0.99), us(0.999), static_cast<double>(t.latency.max()) / 1e3);
      j += buf;
    } else {
      j += ",\"latency_us\":null";
    }
    if (orders) {
      std::snprintf(buf, sizeof buf, ",\"orders\":%llu,\"orders_per_s\":%.1f,\"commands\":%llu,\"commands_per_s\":%.1f",
                    static_cast<unsigned long long>(t.orders), ops, static_cast<unsigned long long>(t.calls), cps);
      j += buf;
      if (t.order_latency.count() > 0) {
        std::snprintf(buf, sizeof buf,
                      ",\"order_latency_us\":{\"count\":%llu,\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
                      "\"p999\":%.1f,\"max\":%.1f}",
                      static_cast<unsigned long long>(t.order_latency.count()),
                      static_cast<double>(t.order_latency.min()) / 1e3, order_us(0.5), order_us(0.9), order_us(0.99),
                      order_us(0.999), static_cast<double>(t.order_latency.max()) / 1e3);
        j += buf;
      } else {
        j += ",\"order_latency_us\":null";
      }
    }
    if (o.workload == Workload::kSubscribe) j += ",\"caught_up\":" + std::to_string(t.caught_up);
    if (t.daemon_cpu_seconds) {
      std::snprintf(buf, sizeof buf, ",\"daemon_cpu\":{\"source\":\"%s\",\"seconds\":%.3f,\"us_per_event\":%s",
                    o.daemon_cpu.name(), *t.daemon_cpu_seconds, PerUnit(*t.daemon_cpu_seconds, t.events, "null").c_str());
      j += buf;
      if (orders) j += ",\"us_per_order\":" + PerUnit(*t.daemon_cpu_seconds, t.orders, "null");
      j += "}";
    } else {
      j += ",\"daemon_cpu\":null";
    }
    j += ",\"errors\":{\"total\":" + std::to_string(t.errors) + ",\"kinds\":{";
    bool first = true;
    for (const auto& [kind, n] : t.error_kinds) {
      if (!first) j += ',';
      j += JsonString(kind);
      j += ':';
      j += std::to_string(n);
      first = false;
    }
    j += "}}";
    j += ",\"ended_by\":" + JsonString(t.ended_by);
    if (!connect_error.empty()) j += ",\"connect_error\":" + JsonString(connect_error);
    j += "}";
    std::cout << j << std::endl;
    return;
  }
  if (orders) {
    std::printf("workload     orders%s, %d clients on %d threads, %d order%s in progress per client\n",
                o.framed ? " (framed protocol)" : "", o.clients, o.threads, o.inflight, o.inflight == 1 ? "" : "s");
  } else {
    std::printf("workload     %s%s, %d clients on %d threads, inflight %d, batch %u, event size %llu B\n",
                WorkloadName(o.workload), o.framed ? " (framed protocol)" : "", o.clients, o.threads, o.inflight,
                o.batch, static_cast<unsigned long long>(o.event_size));
  }
  if (std::string_view(t.ended_by) == "calls") {
    std::printf("duration     %.2f s (ended by --calls %llu)\n", t.seconds, static_cast<unsigned long long>(o.calls));
  } else {
    std::printf("duration     %.2f s\n", t.seconds);
  }
  if (orders) {
    std::printf("orders       %llu (%.0f orders/s)\n", static_cast<unsigned long long>(t.orders), ops);
    std::printf("commands     %llu (%.0f commands/s)\n", static_cast<unsigned long long>(t.calls), cps);
    std::printf("events       %llu (%.0f events/s)\n", static_cast<unsigned long long>(t.events), eps);
  } else {
    std::printf("events       %llu (%.0f events/s)\n", static_cast<unsigned long long>(t.events), eps);
    std::printf("data         %.2f MB/s\n", mbps);
    std::printf("%-12s %llu (%.0f/s)\n", o.workload == Workload::kSubscribe ? "batches" : "calls",
                static_cast<unsigned long long>(t.calls), cps);
  }
  if (has_latency && t.latency.count() > 0) {
    std::printf("latency/%s p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
                orders ? "cmd " : "call", us(0.5), us(0.9), us(0.99), us(0.999), static_cast<double>(t.latency.max()) / 1e3);
  }
  if (orders && t.order_latency.count() > 0) {
    std::printf("latency/order p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", order_us(0.5),
                order_us(0.9), order_us(0.99), order_us(0.999), static_cast<double>(t.order_latency.max()) / 1e3);
  }
  if (t.daemon_cpu_seconds) {
    std::printf("daemon cpu   %.2f s, %s us/event", *t.daemon_cpu_seconds,
                PerUnit(*t.daemon_cpu_seconds, t.events, "n/a").c_str());
    if (orders) std::printf(", %s us/order", PerUnit(*t.daemon_cpu_seconds, t.orders, "n/a").c_str());
    std::printf(" (%s)\n", o.daemon_cpu.pid != 0 ? ("/proc/" + std::to_string(o.daemon_cpu.pid) + "/stat").c_str()
                                                  : ("http://" + o.daemon_cpu.metrics + "/metrics").c_str());
  }
  if (o.workload == Workload::kSubscribe) std::printf("caught up    %d of %d clients\n", t.caught_up, o.clients);
  std::printf("errors       %llu\n", static_cast<unsigned long long>(t.errors));
  for (const auto& [kind, n] : t.error_kinds) {
    auto ex = t.examples.find(kind);
    std::printf("  %-28s %llu%s%s\n", kind.c_str(), static_cast<unsigned long long>(n),
                ex != t.examples.end() ? "  e.g. " : "", ex != t.examples.end() ? ex->second.c_str() : "");
  }
  if (!connect_error.empty()) std::printf("connect      failed: %s\n", connect_error.c_str());
}

int Main(int argc, char** argv) {
  bool help = false;
  std::string error;
  auto parsed = ParseArgs(argc, argv, &help, &error);
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!parsed) {
    std::fprintf(stderr, "esbench: %s\n\n%s", error.c_str(), kUsage);
    return 2;
  }
  const Options o = *parsed;
  const bool tty = isatty(STDERR_FILENO) != 0;
  const std::string run_id = RandomRunId();

  // A daemon CPU source that does not answer is found before any load is sent.
  if (o.daemon_cpu.enabled() && !o.daemon_cpu.Sample(&error)) {
    std::fprintf(stderr, "esbench: cannot measure the daemon's CPU: %s\n", error.c_str());
    return 1;
  }
  if (o.prefill > 0 && !Prefill(o, run_id, o.prefill, tty, &error)) {
    std::fprintf(stderr, "esbench: prefill failed: %s\n", error.c_str());
    return 1;
  }

  Run run(o.threads);
  run.options = &o;
  run.run_id = run_id;
  std::vector<std::unique_ptr<ThreadStats>> stats;
  std::vector<std::thread> threads;
  for (int t = 0, first = 0; t < o.threads; ++t) {
    const int count = o.clients / o.threads + (t < o.clients % o.threads ? 1 : 0);
    stats.push_back(std::make_unique<ThreadStats>());
    threads.emplace_back(RunWorker, std::ref(run), first, count, std::ref(*stats.back()));
    first += count;
  }
  run.connected.wait();
  std::string cpu_error;
  std::optional<double> cpu_before;
  if (o.daemon_cpu.enabled()) cpu_before = o.daemon_cpu.Sample(&cpu_error);
  run.start = Clock::now();
  run.go.count_down();

  // Progress until the duration ends (or, for subscribe, every worker is done).
  const auto end = run.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  const auto period = std::chrono::seconds(tty ? 1 : 5);
  auto next_print = run.start + period;
  uint64_t last_events = 0, last_calls = 0;
  auto last_time = run.start;
  auto sum = [&](auto member) {
    uint64_t n = 0;
    for (auto& s : stats) n += ((*s).*member).load(std::memory_order_relaxed);
    return n;
  };
  const char* ended_by = "finished";
  while (!run.connect_failed && run.finished.load() < o.threads) {
    const auto now = Clock::now();
    if (now >= end) {
      ended_by = "duration";
      break;
    }
    if (o.calls > 0 && sum(&ThreadStats::calls) >= o.calls) {
      ended_by = "calls";
      break;
    }
    if (now >= next_print) {
      const double elapsed = std::chrono::duration<double>(now - last_time).count();
      const uint64_t errors = sum(&ThreadStats::error_count);
      if (o.workload == Workload::kOrders) {
        const uint64_t orders = sum(&ThreadStats::orders), calls = sum(&ThreadStats::calls);
        std::fprintf(stderr, "%s%6.1f s  %llu orders  %.0f orders/s  %.0f commands/s  %llu errors%s", tty ? "\r" : "",
                     std::chrono::duration<double>(now - run.start).count(), static_cast<unsigned long long>(orders),
                     static_cast<double>(orders - last_events) / elapsed,
                     static_cast<double>(calls - last_calls) / elapsed, static_cast<unsigned long long>(errors),
                     tty ? "\033[K" : "\n");
        last_events = orders;
        last_calls = calls;
      } else {
        const uint64_t events = sum(&ThreadStats::events);
        const double rate = static_cast<double>(events - last_events) / elapsed;
        std::fprintf(stderr, "%s%6.1f s  %llu events  %.0f events/s  %llu errors%s", tty ? "\r" : "",
                     std::chrono::duration<double>(now - run.start).count(), static_cast<unsigned long long>(events),
                     rate, static_cast<unsigned long long>(errors), tty ? "\033[K" : "\n");
        last_events = events;
      }
      last_time = now;
      next_print += period;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(50), std::max(end - now, Clock::duration(0))));
  }
  run.stop = true;
  for (auto& th : threads) th.join();
  std::optional<double> cpu_after;
  if (cpu_before) cpu_after = o.daemon_cpu.Sample(&cpu_error);
  if (tty && last_time != run.start) std::fputc('\n', stderr);

  Totals t;
  t.ended_by = ended_by;
  auto last = run.start;
  for (auto& s : stats) {
    t.events += s->events;
    t.calls += s->calls;
    t.bytes += s->bytes;
    t.errors += s->error_count;
    t.orders += s->orders;
    t.latency.Merge(s->latency);
    t.order_latency.Merge(s->order_latency);
    for (const auto& [k, n] : s->errors) t.error_kinds[k] += n;
    for (const auto& [k, ex] : s->error_examples) t.examples.emplace(k, ex);
    t.caught_up += s->clients_caught_up;
    last = std::max(last, s->last_done);
  }
  t.seconds = std::chrono::duration<double>(last - run.start).count();
  if (run.connect_failed) {
    t.error_kinds["connect"] += 1;
    t.errors += 1;
  }
  if (o.workload == Workload::kReadAll && t.events == 0 && t.errors == 0) {
    std::fprintf(stderr, "esbench: the store is empty: nothing to read (use --prefill N)\n");
  }
  if (cpu_before && cpu_after) t.daemon_cpu_seconds = *cpu_after - *cpu_before;
  Report(o, t, run.connect_error);
  if (!cpu_error.empty()) std::fprintf(stderr, "esbench: cannot measure the daemon's CPU: %s\n", cpu_error.c_str());
  if (run.connect_failed && o.json) std::fprintf(stderr, "esbench: %s\n", run.connect_error.c_str());
  return t.errors > 0 || run.connect_failed || !cpu_error.empty() ? 1 : 0;
}

}  // namespace
}  // namespace esbench

int main(int argc, char** argv) { return esbench::Main(argc, argv); }
