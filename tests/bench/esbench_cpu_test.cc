// The daemon's CPU sources of esbench: /proc/PID/stat and process_cpu_seconds_total from
// GET /metrics (parsed, and scraped from a one-answer HTTP server on a loopback port).
#include "bench/esbench_cpu.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace esbench {
namespace {

// A loopback TCP listener that answers the first connection with `answer` and closes.
class OneAnswerServer {
 public:
  explicit OneAnswerServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      ::send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~OneAnswerServer() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept if nobody came
    thread_.join();
    ::close(fd_);
  }
  const std::string& address() const { return address_; }

 private:
  std::string answer_, address_;
  int fd_ = -1;
  std::thread thread_;
};

// A loopback port nobody listens on: bound, then closed.
std::string ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

TEST(ParseCpuSecondsMetric, FindsTheSampleAmongOtherFamilies) {
  const std::string text =
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
      "# TYPE process_cpu_seconds_total counter\n"
      "process_cpu_seconds_total_other 9\n"
      "process_cpu_seconds_total 12.34\n"
      "process_open_fds 20\n";
  EXPECT_EQ(ParseCpuSecondsMetric(text), 12.34);
}

TEST(ParseCpuSecondsMetric, AcceptsLabelsAndCrLf) {
  EXPECT_EQ(ParseCpuSecondsMetric("process_cpu_seconds_total{instance=\"a\"} 7.5\r\n"), 7.5);
}

TEST(ParseCpuSecondsMetric, MissingOrNotANumberIsNothing) {
  EXPECT_EQ(ParseCpuSecondsMetric("process_open_fds 20\n# process_cpu_seconds_total 3\n"), std::nullopt);
  EXPECT_EQ(ParseCpuSecondsMetric("process_cpu_seconds_total abc\n"), std::nullopt);
  EXPECT_EQ(ParseCpuSecondsMetric(""), std::nullopt);
}

TEST(ReadProcessCpuSeconds, CountsTheCpuThisProcessSpent) {
  // Spin until this process has used some CPU time (a tick is 10 ms): no timing assertion,
  // the loop ends when the counter moves.
  std::string error;
  double seconds = 0;
  while (seconds <= 0) {
    volatile uint64_t x = 0;
    for (int i = 0; i < 1000000; ++i) x = x + static_cast<uint64_t>(i);
    auto v = ReadProcessCpuSeconds(::getpid(), &error);
    ASSERT_TRUE(v) << error;
    seconds = *v;
  }
  EXPECT_GT(seconds, 0);
}

TEST(ReadProcessCpuSeconds, ProcessThatIsGoneIsAnError) {
  const pid_t child = ::fork();
  if (child == 0) _exit(0);
  ::waitpid(child, nullptr, 0);  // reaped: /proc/<child> is gone
  std::string error;
  EXPECT_EQ(ReadProcessCpuSeconds(child, &error), std::nullopt);
  EXPECT_NE(error.find("no process " + std::to_string(child)), std::string::npos) << error;
}

TEST(ScrapeCpuSeconds, ReadsTheCounterFromMetrics) {
  OneAnswerServer server("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                         "process_cpu_seconds_total 3.25\n");
  std::string error;
  EXPECT_EQ(ScrapeCpuSeconds(server.address(), &error), 3.25) << error;
}

TEST(ScrapeCpuSeconds, AddressThatDoesNotAnswerIsAnError) {
  const std::string address = ClosedPort();
  std::string error;
  EXPECT_EQ(ScrapeCpuSeconds(address, &error), std::nullopt);
  EXPECT_NE(error.find("cannot connect to " + address), std::string::npos) << error;
}

TEST(ScrapeCpuSeconds, MetricsWithoutTheCounterIsAnError) {
  OneAnswerServer server("HTTP/1.1 200 OK\r\n\r\nsome_other_metric 1\n");
  std::string error;
  EXPECT_EQ(ScrapeCpuSeconds(server.address(), &error), std::nullopt);
  EXPECT_NE(error.find("has no process_cpu_seconds_total"), std::string::npos) << error;
}

TEST(ScrapeCpuSeconds, AnswerThatIsNot200IsAnError) {
  OneAnswerServer server("HTTP/1.1 404 Not Found\r\n\r\nprocess_cpu_seconds_total 1\n");
  std::string error;
  EXPECT_EQ(ScrapeCpuSeconds(server.address(), &error), std::nullopt);
  EXPECT_NE(error.find("not HTTP 200"), std::string::npos) << error;
}

TEST(ScrapeCpuSeconds, AddressWithoutPortIsAnError) {
  std::string error;
  EXPECT_EQ(ScrapeCpuSeconds("localhost", &error), std::nullopt);
  EXPECT_NE(error.find("expected HOST:PORT"), std::string::npos) << error;
}

TEST(CpuSource, ErrorNamesTheFlag) {
  std::string error;
  CpuSource source;
  source.metrics = ClosedPort();
  EXPECT_EQ(source.Sample(&error), std::nullopt);
  EXPECT_EQ(error.rfind("--metrics " + source.metrics + ": ", 0), 0u) << error;
}

}  // namespace
}  // namespace esbench
