// esbench run as a child process against a real esd (EsdProcess: free loopback ports, a
// data directory of the test's own): the daemon's CPU per event with each source, in the
// text report and in --json, and the errors of --daemon-pid and --metrics.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "server/esd_process.h"
#include "storage/test_util.h"

namespace esd {
namespace {

struct Ran {
  int code = -1;
  std::string out, err;
};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs esbench with `args` to its end, its stdout and stderr into files of `dir`.
Ran RunEsbench(const std::filesystem::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), ESBENCH_BINARY);
  const auto out = dir / "esbench.out", err = dir / "esbench.err";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ReadFile(out), ReadFile(err)};
}

class EsbenchCpu : public ::testing::Test {
 protected:
  storage::testing::TempDir dir_;
  testing::EsdProcess esd_{dir_.path() / "data"};

  // A short append run (4 clients, 1 s) with `extra` options.
  Ran Append(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--connect", esd_.rpc_address(), "--clients", "4", "--duration", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunEsbench(dir_.path(), args);
  }
};

void ExpectCpuInJson(const Ran& r, const std::string& source) {
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["daemon_cpu"].is_object()) << r.out;
  EXPECT_EQ(j["daemon_cpu"]["source"], source);
  EXPECT_GT(j["daemon_cpu"]["seconds"].get<double>(), 0) << r.out;
  EXPECT_GT(j["daemon_cpu"]["us_per_event"].get<double>(), 0) << r.out;
  EXPECT_GT(j["latency_us"]["max"].get<double>(), 0) << r.out;
  EXPECT_EQ(j["ended_by"], "duration") << r.out;
  EXPECT_GE(j["latency_us"]["max"].get<double>(), j["latency_us"]["p999"].get<double>()) << r.out;
}

TEST_F(EsbenchCpu, DaemonPidGivesCpuPerEventInJson) {
  ExpectCpuInJson(Append({"--daemon-pid", std::to_string(esd_.pid()), "--json"}), "pid");
}

TEST_F(EsbenchCpu, MetricsAddressGivesCpuPerEventInJson) {
  ExpectCpuInJson(Append({"--metrics", esd_.http_address(), "--json"}), "metrics");
}

TEST_F(EsbenchCpu, TextReportHasTheCpuLineBesideTheRateAndTheMaxLatency) {
  const Ran r = Append({"--daemon-pid", std::to_string(esd_.pid())});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("events/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", max "), std::string::npos) << r.out;
  const size_t line = r.out.find("daemon cpu   ");
  ASSERT_NE(line, std::string::npos) << r.out;
  double seconds = 0, per_event = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str() + line, "daemon cpu   %lf s, %lf us/event", &seconds, &per_event), 2) << r.out;
  EXPECT_GT(seconds, 0);
  EXPECT_GT(per_event, 0);
}

TEST_F(EsbenchCpu, OrdersReportCpuPerOrderToo) {
  const Ran r = RunEsbench(dir_.path(), {"--connect", esd_.rpc_address(), "--workload", "orders", "--clients", "2",
                                         "--duration", "1", "--metrics", esd_.http_address(), "--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["daemon_cpu"]["us_per_event"].get<double>(), 0) << r.out;
  EXPECT_GT(j["daemon_cpu"]["us_per_order"].get<double>(), j["daemon_cpu"]["us_per_event"].get<double>()) << r.out;
  EXPECT_GT(j["order_latency_us"]["max"].get<double>(), 0) << r.out;
}

TEST_F(EsbenchCpu, FramedProtocolPlacesOrdersThroughTheAppenderAndSaysSo) {
  const Ran r = RunEsbench(dir_.path(), {"--connect", esd_.rpc_address(), "--workload", "orders", "--protocol", "frames",
                                         "--clients", "4", "--duration", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["protocol"], "frames") << r.out;
  EXPECT_GT(j["orders"].get<uint64_t>(), 0u) << r.out;
  EXPECT_EQ(j["errors"]["total"], 0) << r.out;
  // Every command esbench counts was served by the daemon's Order service, ok, and wrote.
  const std::string metrics = testing::HttpGet(esd_.http_address(), "/metrics");
  const std::string commands = j["commands"].dump();
  EXPECT_NE(metrics.find("esd_order_commands_total{outcome=\"ok\"} " + commands + "\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("esd_log_appends_total " + commands + "\n"), std::string::npos) << metrics;
}

// --inflight K for orders: one connection carries K orders in progress at once. Each lane
// places its own orders (ids "-c<client>-l<lane>-o<n>", customer cust-<lane> for client 0),
// none collides with another's, the daemon saw one connection, and the lanes' first orders
// were begun together: every lane's first CreateOrder went out before any answer came back,
// so each is in the log before lane 0's first order was placed.
TEST_F(EsbenchCpu, InflightKeepsThatManyOrdersInProgressOnOneConnection) {
  auto metric = [&](const std::string& name) {
    const auto value = testing::MetricSample(testing::HttpGet(esd_.http_address(), "/metrics"), name);
    EXPECT_TRUE(value.has_value()) << name;
    return static_cast<uint64_t>(value.value_or(0));
  };
  const uint64_t connections_before = metric("esd_connections_total");
  const Ran r = RunEsbench(dir_.path(), {"--connect", esd_.rpc_address(), "--workload", "orders", "--protocol", "frames",
                                         "--clients", "1", "--inflight", "4", "--duration", "1", "--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_GT(j["orders"].get<uint64_t>(), 0u) << r.out;
  EXPECT_EQ(metric("esd_connections_total"), connections_before + 1);

  auto client = client::Client::Connect(esd_.rpc_address());
  const uint64_t durable = metric("esd_durable_position");  // one past the last event
  ASSERT_GT(durable, 0u);
  std::vector<std::string> first_orders;  // lane -> its first order's id
  for (int lane = 0; lane < 4; ++lane) {
    const std::string customer = "cust-" + std::to_string(lane);
    client::OrderPage page;
    for (int attempt = 0; attempt < 5; ++attempt) {  // the projection answers within 5 s or says timed out
      page = client->ListOrders(customer, "", 10000, "", durable - 1);
      if (!page.timed_out) break;
    }
    ASSERT_FALSE(page.timed_out) << customer;
    ASSERT_FALSE(page.orders.empty()) << customer << " placed nothing: lane " << lane << " did not run";
    const std::string lane_part = "-c0-l" + std::to_string(lane) + "-o";
    for (const client::OrderView& o : page.orders) {
      EXPECT_NE(o.order_id.find(lane_part), std::string::npos) << o.order_id;
      if (o.order_id.size() >= 3 && o.order_id.compare(o.order_id.size() - 3, 3, "-o0") == 0) {
        first_orders.push_back(o.order_id);
      }
    }
    ASSERT_EQ(first_orders.size(), static_cast<size_t>(lane + 1)) << customer << " has no first order";
  }
  const auto lane0 = client->History(first_orders[0]);
  ASSERT_EQ(lane0.size(), 5u) << "lane 0's first order: created, 3 items, placed";
  for (const std::string& id : first_orders) {
    const auto history = client->History(id);
    ASSERT_FALSE(history.empty()) << id;
    EXPECT_LT(history.front().position, lane0.back().position)
        << id << " was created after lane 0's first order was placed: the lanes ran one after the other";
  }
}

TEST_F(EsbenchCpu, FramedProtocolAppendsThroughTheAppenderAndSaysSo) {
  const Ran r = Append({"--protocol", "frames", "--daemon-pid", std::to_string(esd_.pid()), "--json"});
  ExpectCpuInJson(r, "pid");
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["protocol"], "frames") << r.out;
  const uint64_t events = j["events"].get<uint64_t>();
  EXPECT_GT(events, 0u) << r.out;
  EXPECT_EQ(j["errors"]["total"], 0) << r.out;
  // Every acknowledged append reached the daemon's log.
  const std::string metrics = testing::HttpGet(esd_.http_address(), "/metrics");
  EXPECT_NE(metrics.find("esd_log_appends_total " + std::to_string(events) + "\n"), std::string::npos) << metrics;
}

// --calls ends the run by count, not by the clock: the tail check "no append over 50 ms in
// 5 M appends" is `--calls 5000000`. The duration is a cap far beyond what 300 appends take;
// the report says which of the two ended the run.
TEST_F(EsbenchCpu, CallsEndsTheRunOnceThatManyAppendsHaveCompleted) {
  const Ran r = Append({"--calls", "300", "--duration", "120", "--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ended_by"], "calls") << r.out;
  EXPECT_GE(j["calls"].get<uint64_t>(), 300u) << r.out;
  EXPECT_EQ(j["latency_us"]["count"].get<uint64_t>(), j["calls"].get<uint64_t>()) << r.out;
}

TEST_F(EsbenchCpu, WithoutASourceJsonSaysNull) {
  const Ran r = Append({"--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["daemon_cpu"].is_null()) << r.out;
  EXPECT_EQ(r.out.find("daemon cpu"), std::string::npos);
}

TEST_F(EsbenchCpu, PidThatIsNotThereFailsBeforeAnyLoad) {
  const pid_t child = ::fork();
  if (child == 0) _exit(0);
  ::waitpid(child, nullptr, 0);  // reaped: no such process any more
  const Ran r = Append({"--daemon-pid", std::to_string(child), "--prefill", "1000", "--json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("esbench: cannot measure the daemon's CPU: --daemon-pid " + std::to_string(child) +
                       ": no process " + std::to_string(child)),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
  // Nothing was appended: the prefill never started.
  const Ran read = RunEsbench(dir_.path(), {"--connect", esd_.rpc_address(), "--workload", "read-all",
                                            "--duration", "1", "--json"});
  EXPECT_EQ(nlohmann::json::parse(read.out)["events"], 0) << read.out << read.err;
}

TEST_F(EsbenchCpu, MetricsAddressThatDoesNotAnswerIsAClearError) {
  // The HTTP address of a second daemon that has been stopped: a port nobody listens on.
  std::string closed;
  {
    testing::EsdProcess other(dir_.path() / "other");
    closed = other.http_address();
    other.Stop(SIGTERM);
  }
  const Ran r = Append({"--metrics", closed});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("esbench: cannot measure the daemon's CPU: --metrics " + closed + ": cannot connect to " +
                       closed),
            std::string::npos)
      << r.err;
}

TEST_F(EsbenchCpu, BothSourcesAtOnceIsBadUsage) {
  const Ran r = Append({"--daemon-pid", std::to_string(esd_.pid()), "--metrics", esd_.http_address()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--daemon-pid and --metrics both measure the daemon's CPU: give one of them"),
            std::string::npos)
      << r.err;
}

TEST_F(EsbenchCpu, DaemonPidThatIsNotANumberIsBadUsage) {
  const Ran r = Append({"--daemon-pid", "esd"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--daemon-pid: expected a whole number from 1 to 4194304, got 'esd'"), std::string::npos)
      << r.err;
}

TEST(EsbenchUsage, CallsIsAPositiveCountAndNotForSubscriptions) {
  storage::testing::TempDir dir;
  Ran r = RunEsbench(dir.path(), {"--calls", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--calls: expected a whole number from 1 to"), std::string::npos) << r.err;
  r = RunEsbench(dir.path(), {"--workload", "subscribe", "--calls", "10"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--calls: a subscription stops when it has caught up; use --prefill to size what it reads"),
            std::string::npos)
      << r.err;
}

TEST(EsbenchUsage, TheFramedProtocolIsForTheWriteWorkloadsOnly) {
  storage::testing::TempDir dir;
  Ran r = RunEsbench(dir.path(), {"--workload", "subscribe", "--protocol", "frames"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--protocol frames: only the append and orders workloads have a framed form"),
            std::string::npos)
      << r.err;
  r = RunEsbench(dir.path(), {"--protocol", "http"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--protocol: expected rpc or frames, got 'http'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace esd
